# Generation on LSUN-Churches 256x256 with the paper's LDM-8 row (Table 7: FID 4.02): the LDM-KL-8
# of latent-diffusion's lsun_churches-ldm-kl-8.yaml (a UNet2DModel of width 192, channel
# multipliers 1, 2, 2, 4, 4, 2 res blocks a level, self-attention with 8 heads at every width
# (num_heads: 8, so heads of 24 to 96 channels) at latent sides 32, 16, 8, 4, resampling by
# ResBlocks (resblock_updown), scale-shift norm) on the 32 x 32 x 4 latents of its frozen KL-f8
# AutoencoderKL, linear-in-sqrt(beta) schedule 0.0015 .. 0.0155 over 1000 steps, stage 0 of
# genrep.GenRep (the diffusion loss; fixed variance). Source: the released yaml and the LDM
# paper's Table 14 (f = 8, z 32x32x4, batch 96, lr 5e-5).
# tools/model_converters/ldm_to_diffusers.py converts the released checkpoint: unet/ a UNet2DModel
# (down/upsample_type 'resnet'), whose 8 heads at every width the UNet2DDenoiser imposes
# (num_attention_heads: UNet2DModel's config can only fix the head width), and vae/ an
# AutoencoderKL whose scaling_factor is the checkpoint's own scale_factor: the yaml trains with
# scale_by_std, so the value (1 / std of the first batch's latents) exists only in the .ckpt and
# the config reads it from the folder rather than stating one.
#
# Perception: none. LSUN-Churches has no labels and the paper names no task on it; the one class
# here ('church_outdoor', a zero-initialised class row added to the unconditional UNet, UNet2DDenoiser
# num_classes) only carries the data through GenRep's classification interface, and there is no
# GenRep stage 1/2 config: the teacher p(y|x) and L_gen_distil need at least two classes.
#
# The data: the exported LSUN images (lsun's `data.py export church_outdoor_train_lmdb`) under
# data/lsun/church_outdoor_train/church_outdoor/ (any depth of subfolders), read by mmpretrain's
# CustomDataset, whose class is the first folder level. Testing draws 50k samples of 200 DDPM steps
# and scores FID / precision / recall in Inception space against 50k training images.
_base_ = ['./celebahq256_ldm.py']

pretrained = 'checkpoints/ldm-lsun-churches-256'
data_root = 'data/lsun'
num_classes = 1

scheduler = dict(beta_end=0.0155)
data_preprocessor = dict(num_classes=num_classes)
model = dict(
    perception=dict(
        data_preprocessor=data_preprocessor,
        backbone=dict(
            # scaling_factor: vae/config.json's, the checkpoint's scale_factor (see above)
            vae=dict(_delete_=True, type='AutoencoderKL', pretrained=pretrained, subfolder='vae'),
            denoiser=dict(pretrained=pretrained, num_classes=num_classes,
                          num_attention_heads=8)),
        head=dict(num_classes=num_classes, in_channels=768)),  # the deepest level: 192 x 4
    schedule=dict(scheduler=scheduler),
    eps_loss='l1')  # the yaml's loss_type: l1

# LDM's LSUN preprocessing: the shorter side (256 in the export) resized to 256, a centre crop,
# random flips.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs'),
]
church_images = dict(type='CustomDataset', data_root=data_root,
                     data_prefix='church_outdoor_train', extensions=('.webp', '.jpg', '.png'))
train_dataloader = dict(
    batch_size=12,  # x 8 GPUs = the LDM paper's 96
    dataset=dict(_delete_=True, pipeline=train_pipeline, **church_images))
val_dataloader = dict(dataset=dict(_delete_=True, pipeline=test_pipeline, **church_images))
test_dataloader = val_dataloader
# The yaml's optimiser and schedule: AdamW 5e-5 (weight decay 0.01, torch's default, from the
# base), LambdaLinearScheduler warming up linearly from 1e-6 x to 1 x over 10k steps, then flat;
# its loss, loss_type l1 (the mean |eps - eps_hat|, eps_loss='l1' above), where the other LDM
# yamls (cin, celebahq) keep the default MSE.
optim_wrapper = dict(optimizer=dict(lr=5e-5))
param_scheduler = [dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=10000)]
# The protocols of the published figures, by name; the hook below is the paper's (Sec. 3.3: 200
# DDPM steps). latent-diffusion's README (its model table): LSUN-Churches LDM-KL-8, 400
# DDIM steps, eta 0: FID 4.02, the figure the paper's Table 7 cites (ldm_readme).
generation_protocols = dict(
    paper=dict(num_steps=200, sampling=dict(sampler='ddpm')),
    ldm_readme=dict(num_steps=400, sampling=dict(sampler='ddim', eta=0.0)))
custom_hooks = [
    dict(
        type='genrep.GenerationEvalHook',
        metric=dict(
            type='GenerationMetric',
            features=['inception_v3'],
            inception_weights={{_base_.inception_weights}},
            cas=False,
            real_dataset=dict(pipeline=test_pipeline, **church_images),
            num_real=50000),
        classes=[num_classes],  # the null class: unconditional samples
        samples_per_class=50000,
        num_steps=200,
        batch_size=250),
    {{_base_.generation_ema}},
]

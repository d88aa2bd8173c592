# Generation on CelebA-HQ 256x256 with the paper's LDM-4 row (Table 7: FID 5.11) and GenRep's
# shared denoiser: the LDM-4 of latent-diffusion's celebahq-ldm-vq-4.yaml (a UNet2DModel of width
# 224, channel multipliers 1, 2, 3, 4, 2 res blocks a level, self-attention with 32-channel heads at
# latent sides 32, 16, 8, i.e. levels 2-4) on the 64 x 64 x 3 latents of its frozen VQ-f4 first stage
# (a diffusers VQModel, 8192 codes, LDM's scale 1), linear-in-sqrt(beta) schedule 0.0015 .. 0.0195
# over 1000 steps, stage 0 of genrep.GenRep (the diffusion loss; fixed variance). Source of the
# shapes: the LDM paper's Table 14 (CelebA-HQ: f = 4, z 64x64x3, |Z| 8192, 274M parameters,
# channels 224, depth 2, multipliers 1,2,3,4, attention at 32, 16, 8, head channels 32, batch 48,
# lr 9.6e-5) and the released yaml, as remembered: check them against your checkpoint.
#
# Perception: the LDM is unconditional and the paper names no CelebA-HQ perception task. Here it is
# one binary CelebA attribute of CelebAMask-HQ's annotation file (`attribute`, default 'Male'), a
# linear head on the pooled deepest decoder level; the pretrained unconditional UNet gets a
# zero-initialised table of the 2 attribute classes + the null class (UNet2DDenoiser
# num_classes), so it starts as the unconditional model. The generation metrics are of
# unconditional samples (the null class), what the paper's Table 7 reports: FID / precision /
# recall in Inception space against the training images.
#
# `pretrained` is a local diffusers folder with `unet/` and `vqvae/` (as LDMPipeline's
# save_pretrained: CompVis/ldm-celebahq-256 saved once). The data is CelebAMask-HQ
# (genrep.CelebAHQ: CelebA-HQ-img/, the attribute and mapping files, and CelebA's
# list_eval_partition.txt).
_base_ = ['../_base_/generation_runtime.py', '../_base_/models/ldm_schedule.py']

pretrained = 'checkpoints/ldm-celebahq-256'
data_root = 'data/CelebAMask-HQ'
attribute = 'Male'
num_classes = 2
image_size = 256

scheduler = _base_.ldm_scheduler
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[127.5, 127.5, 127.5],  # to [-1, 1], the first stage's input range
    std=[127.5, 127.5, 127.5],
    to_rgb=True)
perception = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='genrep.DiffusionBackbone',
        timestep=0,
        vae=dict(type='VQModel', pretrained=pretrained, subfolder='vqvae', scaling_factor=1.0),
        denoiser=dict(type='UNet2DDenoiser', pretrained=pretrained, subfolder='unet',
                      num_classes=num_classes)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=896,  # the deepest level: 224 x 4
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
model = dict(
    type='genrep.GenRep',
    perception=perception,
    task=dict(type='ClassificationAdapter'),
    schedule=dict(type='DiffusionSchedule', scheduler=scheduler),
    stage=0,
    vlb_weight=0.0,  # fixed variance: the bound would train nothing
    label_dropout=0.1)

# LDM's CelebA-HQ preprocessing: the 1024 px images resized to 256, random flips.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), backend='pillow',
         interpolation='bicubic'),
    dict(type='PackInputs'),
]
dataset = dict(type='genrep.CelebAHQ', data_root=data_root, attribute=attribute)
train_dataloader = dict(
    batch_size=6,  # x 8 GPUs = the LDM paper's 48
    dataset=dict(dataset, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(dataset, split='test', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# The LDM paper's CelebA-HQ rate (9.6e-5 at batch 48), AdamW with torch's default weight decay
# 0.01 (latent-diffusion's ddpm.py: AdamW(params, lr=lr)); continued from the pretrained weights
# for 100k iterations (the paper gives no fine-tuning length).
max_iters = 100000
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=9.6e-5, weight_decay=0.01))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
# 50k unconditional samples (the null class: `classes` = [num_classes]) of 200 DDPM steps (the
# paper's LDM inference), against 30k real images (CelebA-HQ's size).
generation_eval = dict(
    type='genrep.GenerationEvalHook',
    metric=dict(
        _base_.generation_metric,
        real_dataset=dict(dataset, split='all', pipeline=test_pipeline),
        num_real=30000),
    classes=[num_classes],
    samples_per_class=50000,
    num_steps=200,
    batch_size=250)
# The protocols of the published figures, by name; the hook above is the paper's (Sec. 3.3: 200
# DDPM steps). latent-diffusion's README (its model table): CelebA-HQ LDM-VQ-4, 200
# DDIM steps, eta 0: FID 5.11, the figure the paper's Table 7 cites (ldm_readme).
generation_protocols = dict(
    paper=dict(num_steps=200, sampling=dict(sampler='ddpm')),
    ldm_readme=dict(num_steps=200, sampling=dict(sampler='ddim', eta=0.0)))
# The weight EMA that sampling and testing read: _base_/generation_runtime.py's.
custom_hooks = [generation_eval, _base_.generation_ema]

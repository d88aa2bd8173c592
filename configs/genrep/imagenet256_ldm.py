# Class-conditional generation on ImageNet 256x256 with the paper's LDM row (Table 6: LDM-8, FID
# 7.77) and GenRep's shared denoiser: the LDM-8 of latent-diffusion's released cin-ldm-vq-f8.yaml
# (a UNet2DConditionModel: block_out_channels (256, 512, 1024), 2 res blocks a level,
# CrossAttn{Down,Up}Block2D at every level with 32-channel heads (attention_head_dim (8, 16, 32)),
# transformer depth 1, cross-attention on a 512-d class embedding: cross_attention_dim 512) on the
# 32 x 32 x 4 latents of its frozen VQ-f8 first stage (a diffusers VQModel, 16384 codes, LDM's
# scale 1), stage 0 of genrep.GenRep: the diffusion loss (eps, fixed
# variance: LDM learns none). The same denoiser carries an mmpretrain ImageClassifier
# (DiffusionBackbone at t = 0 with the null class, pooling of the deepest decoder level, a linear
# head) that stage 1 and 2 train (imagenet256_ldm_genrep_stage{1,2}.py). Source of the shapes:
# cin-ldm-vq-f8.yaml of CompVis/latent-diffusion (model_channels 256, attention_resolutions
# [4, 2, 1], channel_mult [1, 2, 4], num_head_channels 32, transformer_depth 1, context_dim 512;
# linear_start 0.0015, linear_end 0.0195, 1000 steps).
#
# `pretrained` is the folder tools/model_converters/ldm_to_diffusers.py writes from the released
# cin-ldm-vq-f8 checkpoint and its yaml: `unet/`, `vqvae/` (scaling_factor 1: the yaml sets no
# scale_factor and no scale_by_std) and `class_embedding.safetensors`, the trained ClassEmbedder
# table (1000 x 512) that the denoiser reads as its class context (class_embedding below: one
# token a class, as LDM cross-attends to it; the null class, which this LDM never trained, starts
# at the mean of the classes and label dropout trains it). The data is ImageNet-1k in mmpretrain's
# layout: data/imagenet/{train,val}/ with meta/{train,val}.txt ("path label").
# Testing samples 50 images per class (FID-50K) with 200 DDPM steps (the paper's LDM inference,
# Sec. 3.3) and scores FID / IS / precision / recall in Inception space (the weights file at
# `inception_weights`, never downloaded) against the training images, from the EMA weights.
# Published figures use other protocols (generation_protocols below).
_base_ = ['./imagenet256_dit.py', '../_base_/models/ldm_schedule.py']

pretrained = 'checkpoints/ldm-cin256-f8'
inception_weights = 'checkpoints/pt_inception-2015-12-05-6726825d.pth'
num_classes = 1000

scheduler = dict(_base_.ldm_scheduler, _delete_=True)  # DiT's replaced by LDM's

model = dict(
    perception=dict(
        backbone=dict(
            vae=dict(_delete_=True, type='VQModel', pretrained=pretrained, subfolder='vqvae',
                     scaling_factor=1.0),
            denoiser=dict(
                _delete_=True,
                type='UNet2DConditionDenoiser',
                pretrained=pretrained,
                subfolder='unet',
                num_classes=num_classes,
                class_embedding=pretrained + '/class_embedding.safetensors'),
            out_indices=(0, 1, 2)),  # the UNet's 3 levels
        head=dict(in_channels=1024)),  # the deepest decoder level's width
    schedule=dict(scheduler=scheduler),
    vlb_weight=0.0)  # fixed variance: the bound would train nothing

# latent-diffusion's cin-ldm-vq-f8 training: batch 64 a GPU, AdamW at base_learning_rate 1e-6 x
# the batch (LDM scales it: 1e-6 x 8 GPUs x 64 = 5.12e-4 on 8 GPUs) and torch's default weight
# decay 0.01 (ddpm.py configure_optimizers: AdamW(params, lr=lr)); continued from the pretrained
# weights, the length as the DiT config's.
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=5.12e-4, weight_decay=0.01))
# The base's hook (FID-50K in Inception space) with LDM's inference: 200 unguided DDPM steps.
generation_eval = dict(
    type='genrep.GenerationEvalHook',
    metric={{_base_.generation_eval.metric}},
    samples_per_class=50,
    num_steps=200,
    batch_size=250,
    sampling=dict(guidance_scale=1.0))
# The protocols of the published figures, by name. latent-diffusion's README (its model table):
# cin LDM-VQ-8, 200 DDIM steps, eta 1: FID 15.82 unguided (ldm_readme_unguided), 7.77
# with CLASSIFIER guidance (scale 10, a noisy ImageNet classifier: not offered by genrep, whose
# guidance is classifier-free). The paper's Table 6 cites the 7.77; compare this config's figures
# with the unguided row.
generation_protocols = dict(
    paper=dict(num_steps=200, sampling=dict(sampler='ddpm', guidance_scale=1.0)),
    ldm_readme_unguided=dict(num_steps=200, sampling=dict(sampler='ddim', eta=1.0,
                                                          guidance_scale=1.0)))
custom_hooks = [generation_eval, {{_base_.generation_ema}}]

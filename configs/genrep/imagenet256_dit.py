# Class-conditional generation on ImageNet 256x256 (the paper's DiT rows) with GenRep's shared
# denoiser: DiT-XL/2 (diffusers DiTTransformer2DModel: 28 blocks, width 1152, 16 heads, patch 2,
# learned sigma, 1000 classes + the null class of label dropout 0.1) on the latents of a frozen
# AutoencoderKL (sd-vae-ft-ema, x0.18215), trained by the diffusion loss plus the variational bound
# of its learned variance (improved DDPM, as DiT), stage 0 of genrep.GenRep. The same denoiser
# carries an mmpretrain ImageClassifier (DiffusionBackbone at t = 0 with the null class, global
# pooling, a linear head) that stage 1 and 2 train (imagenet256_dit_genrep_stage{1,2}.py).
#
# `pretrained` is a local diffusers checkpoint directory with `transformer/` and `vae/`, as
# DiTPipeline.save_pretrained writes it (facebook/DiT-XL-2-256 saved once, or the original DiT .pt
# converted with tools/model_converters/dit_to_diffusers.py). The data is ImageNet-1k in
# mmpretrain's layout: data/imagenet/{train,val}/ with meta/{train,val}.txt ("path label" lines).
# Testing samples 50 images per class (FID-50K) with 250 DDPM steps and guidance 1.5 (DiT's
# reported setting) and scores FID / IS / precision / recall in Inception space, which needs the
# Inception weights file at `inception_weights` (torch-fidelity's pt_inception-2015-12-05; never
# downloaded), against the training images. That is NOT the protocol of DiT's published FID-50K
# (2.27 at guidance 1.5): those are ADM's evaluation suite (its TF Inception graph) against ADM's
# reference batch VIRTUAL_imagenet256_labeled.npz; for a figure comparable with them use
# generation_protocols['dit_table4'] below with ADM's evaluator on the samples tools/sample.py
# exports. Sampling and testing read the EMA weights (generation_ema below), as DiT samples.
# Two differences from DiT's code, kept: the generation loss encodes images to the posterior MEAN
# x 0.18215 (DiT's train.py samples the posterior: latent_dist.sample()), the deterministic
# latents the perception pass shares; classifier-free guidance moves all 4 latent channels (DiT's
# forward_with_cfg guides the first 3, a quirk it keeps for reproducibility).
_base_ = ['../_base_/generation_runtime.py']

pretrained = 'checkpoints/DiT-XL-2-256'
num_classes = 1000
image_size = 256
data_root = 'data/imagenet'

# DiT's diffusion: 1000 linear steps (1e-4 .. 0.02), learned-range variance, no clipping of x_0 in
# latent space.
scheduler = dict(
    num_train_timesteps=1000,
    beta_schedule='linear',
    beta_start=0.0001,
    beta_end=0.02,
    variance_type='learned_range',
    clip_sample=False)

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[127.5, 127.5, 127.5],  # to [-1, 1], the VAE's input range
    std=[127.5, 127.5, 127.5],
    to_rgb=True)
perception = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='genrep.DiffusionBackbone',
        timestep=0,
        vae=dict(pretrained=pretrained, subfolder='vae'),
        denoiser=dict(type='DiTDenoiser', pretrained=pretrained, subfolder='transformer')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=1152,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
model = dict(
    type='genrep.GenRep',
    perception=perception,
    task=dict(type='ClassificationAdapter'),
    schedule=dict(type='DiffusionSchedule', scheduler=scheduler),
    stage=0,
    vlb_weight=1.0,
    label_dropout=0.1)

# ADM's preprocessing (DiT's too): the shorter side resized to 256, a centre crop, random flips.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=image_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=image_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,  # x 8 GPUs = DiT's 256
    dataset=dict(type='ImageNet', data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type='ImageNet', data_root=data_root, split='val', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# DiT's optimiser (AdamW 1e-4, no weight decay, no schedule), continued from the pretrained weights;
# the paper gives no generation fine-tuning length: 400k iterations of 256 images here.
max_iters = 400000
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
generation_eval = dict(
    type='genrep.GenerationEvalHook',
    metric=dict(
        _base_.generation_metric,
        real_dataset=dict(
            type='mmpretrain.ImageNet', data_root=data_root, split='train',
            pipeline=test_pipeline),
        num_real=50000),
    samples_per_class=50,
    num_steps=250,
    batch_size=250,
    sampling=dict(guidance_scale=1.5))
# The protocols of the published figures, by name (the hook above is the paper's, Sec. 3.3: 250
# DDPM steps). DiT's Table 4 FID-50K 2.27 (guidance 1.5) / 9.62 (none): 250 DDPM steps, guidance
# on the first 3 latent channels (DiT's forward_with_cfg; genrep guides all 4), 50 samples a
# class, scored by ADM's evaluator.py against VIRTUAL_imagenet256_labeled.npz:
#   python tools/sample.py CONFIG CKPT --per-class 50 --steps 250 --guidance-scale 1.5 \
#       --out work_dirs/dit_fid50k.png    # writes work_dirs/dit_fid50k.npz (arr_0: uint8 NHWC)
#   python evaluator.py VIRTUAL_imagenet256_labeled.npz work_dirs/dit_fid50k.npz  (ADM's suite)
generation_protocols = dict(
    paper=dict(num_steps=250, sampling=dict(guidance_scale=1.5)),
    dit_table4=dict(num_steps=250, sampling=dict(guidance_scale=1.5)),
    dit_table4_unguided=dict(num_steps=250, sampling=dict(guidance_scale=1.0)))
# The weight EMA that sampling and testing read: _base_/generation_runtime.py's.
custom_hooks = [generation_eval, _base_.generation_ema]

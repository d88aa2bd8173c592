# Monocular depth on NYUv2 (Sec. 4, Table 2) with a latent diffusion backbone: a stock mmseg
# DepthEstimator whose backbone is genrep.DiffusionBackbone (Stable Diffusion's UNet2DConditionModel
# read once at t = 0 with the null class, over AutoencoderKL latents) and genrep.BinsDepthHead
# (adaptive bins, MaskFormer-like, after BinsFormer, paper A.4) with mmseg's SiLogLoss. Data: the
# common NYUv2 layout of the depth literature (BTS / AdaBins / BinsFormer: `sync/` and
# `official_splits/test/` listed by nyudepthv2_{train,test}_files_with_gt.txt, 24,231 / 652 pairs,
# genrep.NYUv2SplitDataset), mmseg's NYU pipelines and DepthMetric with the eigen crop
# (crop_type='nyu_crop': rows 45..470, columns 41..600 of the 480 x 640 ground truth), depths in
# (1 mm, 10 m). `pretrained` is a local diffusers checkpoint directory (the `unet/`, `vae/`,
# `text_encoder/` and `tokenizer/` subfolders of a StableDiffusionPipeline's save_pretrained; SD 1.5
# by default). The class table of the UNet starts from SD's text context of each of mmseg's 27
# NYUv2 scene classes ('a photograph of a kitchen.'), what GenRep's scene-class teacher reads
# (nyuv2_ldm_genrep_stage1.py); the perception pass uses the null class (the empty prompt).
_base_ = ['mmseg::_base_/datasets/nyu.py', 'mmseg::_base_/default_runtime.py',
          '../_base_/models/stable_diffusion_backbone.py']
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

pretrained = 'checkpoints/stable-diffusion-v1-5'
data_root = 'data/nyu'
num_classes = 27  # mmseg's NYUv2 scene classes (NYUDataset.METAINFO)
min_depth, max_depth = 1e-3, 10.0
# Training crops: the common 416 x 544 rounded up to multiples of 64 (the VAE's x8 times the
# UNet's deepest x8); test on the whole 480 x 640 image padded to 512 x 640. mmseg's NYU configs
# and VPD's depth model crop 480 x 480, not a multiple of 64 (VPD pads inside its model).
crop_size = (448, 576)
size_divisor = 64

data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],  # [-1, 1] RGB, the range of the VAE
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,  # depth 0 = no ground truth
    size=crop_size,
    test_cfg=dict(size_divisor=size_divisor))
model = dict(
    type='DepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _base_.sd_backbone,
        denoiser=dict(_base_.sd_unet, num_classes=num_classes),
        class_prompts=dict(pretrained=pretrained, class_names='mmseg.NYUDataset')),
    decode_head=dict(
        type='genrep.BinsDepthHead',
        in_channels=_base_.sd_feature_channels,  # SD 1.x decoder levels, strides 8, 16, 32, 64
        channels=256,
        num_bins=64,  # BinsFormer's
        num_layers=6,
        num_heads=8,
        min_depth=min_depth,
        max_depth=max_depth,
        loss_decode=dict(type='SiLogLoss')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
             'flip', 'flip_direction', 'category_id')
# mmseg's NYU training pipeline with the crop above; its Albu colour jitter (brightness, contrast,
# gamma, hue/saturation; albumentations is not a dependency) by mmseg's PhotoMetricDistortion.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomDepthMix', prob=0.25),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
# The ground truth is loaded at 480 x 640 after the image: the eigen crop is cut on it.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
dataset_type = 'genrep.NYUv2SplitDataset'
# Batch 16 (paper Sec. 4): 8 GPUs x 2.
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='nyudepthv2_train_files_with_gt.txt',
        data_prefix=dict(img_path='sync', depth_map_path='sync'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='nyudepthv2_test_files_with_gt.txt',
        data_prefix=dict(img_path='official_splits/test', depth_map_path='official_splits/test'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='DepthMetric', min_depth_eval=min_depth, max_depth_eval=max_depth,
                     crop_type='nyu_crop')
test_evaluator = val_evaluator

# Paper Sec. 4 "Training" (after BinsFormer): Adam, learning rate 1e-4, weight decay 5e-2, 40k
# steps of batch 16; poly decay.
max_iters = 40000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=5e-2),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, by_epoch=False, begin=0, end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    preemption=dict(type='genrep.PreemptionHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='genrep.CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=1,
                    save_best='abs_rel', rule='less'),
    visualization=dict(type='SegVisualizationHook', draw=False))

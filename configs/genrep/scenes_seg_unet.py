# Closed-set semantic segmentation on the embedded scenes (`make scenes`: 400 train / 100 val scenes
# of 128 x 128 px, real photo cut-outs of 17 super-categories on real background photos, from
# tools/dataset_converters/make_scenes.py): a stock mmseg EncoderDecoder whose backbone is
# genrep.DiffusionBackbone over a small pixel-space class-conditional diffusers UNet2DModel (trained
# from scratch: no pretrained diffusion model exists for these scenes), an FPN neck over three of its
# decoder levels and mmseg's FPNHead (a per-pixel head: Mask2Former, the paper's head in
# ade20k_ldm.py, costs more than this CPU job's budget). mIoU by mmseg's IoUMetric; test overlays by
# mmseg's SegVisualizationHook. Sized for 2 CPU cores (`make seg`): 64 px, 1200 iterations of 8.
_base_ = ['mmseg::_base_/default_runtime.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

data_root = 'data/scenes/ade'
num_classes = 17
crop_size = (64, 64)  # the 128 px scenes resized: 2 CPU cores' budget
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],  # [-1, 1], the diffusion model's range
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='genrep.DiffusionBackbone',
        timestep=0,
        out_indices=(1, 2, 3),  # strides 2, 4, 8 (stride 1 costs most and adds little)
        denoiser=dict(
            type='UNet2DDenoiser',
            config=dict(
                sample_size=64,
                in_channels=3,
                out_channels=3,
                block_out_channels=(32, 64, 96, 128),
                layers_per_block=1,
                down_block_types=('DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D'),
                up_block_types=('AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'),
                norm_num_groups=8,
                num_class_embeds=num_classes + 1))),  # + the null class of the perception pass
    neck=dict(type='FPN', in_channels=[64, 96, 128], out_channels=64, num_outs=3),
    decode_head=dict(
        type='FPNHead',
        in_channels=[64, 64, 64],
        in_index=[0, 1, 2],
        feature_strides=[2, 4, 8],
        channels=64,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=dict(type='GN', num_groups=8),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),  # 0 = unlabelled background -> 255
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
dataset = dict(
    type='genrep.ScenesSegDataset',
    data_root=data_root,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 1200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=False, begin=100, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=True, interval=10))
randomness = dict(seed=0)

# Monocular depth on the embedded scenes (`make scenes`: 400 train / 100 test scenes of 128 x 128
# px in mmseg's NYU layout, real photo cut-outs standing on a ground plane under a pinhole camera,
# uint16 millimetre depth, the far backdrop at 10 m; tools/dataset_converters/make_scenes.py): a
# stock mmseg DepthEstimator whose backbone is genrep.DiffusionBackbone over a small pixel-space
# diffusers UNet2DModel (trained from scratch: no pretrained diffusion model exists for these
# scenes), decoded by genrep.BinsDepthHead (adaptive bins, BinsFormer / paper A.4) with mmseg's
# SiLogLoss. Evaluation: mmseg's DepthMetric on the full 128 px map (no eigen crop: it is cut for
# 480 x 640 images) over every valid pixel, backdrop included; depth maps rendered in colour by
# mmseg's SegVisualizationHook (vis_data/vis_image of the test work dir). Sized for 2 CPU cores
# (`make depth`): 64 px input, 800 iterations of 8 (1.2 s each with one thread).
_base_ = ['mmseg::_base_/default_runtime.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

data_root = 'data/scenes/nyu'
num_classes = 17  # the scene classes of nyu/classes.json (what GenRep conditions on)
max_depth = 10.5  # the backdrop is at 10 m; the bins must reach it
crop_size = (64, 64)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],  # [-1, 1], the diffusion model's range
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,  # depth 0 = invalid
    size=crop_size)
model = dict(
    type='DepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='genrep.DiffusionBackbone',
        timestep=0,
        out_indices=(1, 2, 3),  # strides 2, 4, 8
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
    decode_head=dict(
        type='genrep.BinsDepthHead',
        in_channels=[64, 96, 128],
        channels=64,
        num_bins=32,
        num_layers=2,
        num_heads=4,
        min_depth=1e-3,
        max_depth=max_depth,
        loss_decode=dict(type='SiLogLoss')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
             'flip', 'flip_direction', 'category_id')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
# The prediction is resized back to 128 px (DepthEstimator.postprocess_result) and scored against
# the depth map as stored.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='genrep.ScenesDepthDataset',
        data_root=data_root,
        split='train',
        data_prefix=dict(img_path='images/train', depth_map_path='annotations/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='genrep.ScenesDepthDataset',
        data_root=data_root,
        split='test',
        test_mode=True,
        data_prefix=dict(img_path='images/test', depth_map_path='annotations/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='DepthMetric', min_depth_eval=1e-3, max_depth_eval=max_depth,
                     crop_type=None)
test_evaluator = val_evaluator

max_iters = 800
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
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=True, interval=10))
randomness = dict(seed=0)

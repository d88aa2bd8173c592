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
_base_ = ['../_base_/models/scenes_unet.py', '../_base_/scenes_runtime.py']

data_root = 'data/scenes/nyu'
max_depth = 10.5  # the backdrop is at 10 m; the bins must reach it
crop_size = {{_base_.crop_size}}
data_preprocessor = dict(seg_pad_val=0)  # depth 0 = invalid
model = dict(
    type='DepthEstimator',
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        type='genrep.BinsDepthHead',
        in_channels=[64, 96, 128],
        channels=64,
        num_bins=32,
        num_layers=2,
        num_heads=4,
        min_depth=1e-3,
        max_depth=max_depth,
        loss_decode=dict(type='SiLogLoss')))

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
    dataset=dict(
        type='genrep.ScenesDepthDataset',
        data_root=data_root,
        split='train',
        data_prefix=dict(img_path='images/train', depth_map_path='annotations/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
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
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=False, begin=100, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=400))

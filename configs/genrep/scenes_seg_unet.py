# Closed-set semantic segmentation on the embedded scenes (`make scenes`: 400 train / 100 val scenes
# of 128 x 128 px, real photo cut-outs of 17 super-categories on real background photos, from
# tools/dataset_converters/make_scenes.py): a stock mmseg EncoderDecoder whose backbone is
# genrep.DiffusionBackbone over a small pixel-space class-conditional diffusers UNet2DModel (trained
# from scratch: no pretrained diffusion model exists for these scenes), an FPN neck over three of its
# decoder levels and mmseg's FPNHead (a per-pixel head: Mask2Former, the paper's head in
# ade20k_ldm.py, costs more than this CPU job's budget). mIoU by mmseg's IoUMetric; test overlays by
# mmseg's SegVisualizationHook. Sized for 2 CPU cores (`make seg`): 64 px, 1200 iterations of 8.
_base_ = ['../_base_/models/scenes_unet.py', '../_base_/scenes_runtime.py']

data_root = 'data/scenes/ade'
crop_size = {{_base_.crop_size}}
model = dict(
    type='EncoderDecoder',
    neck=dict(type='FPN', in_channels=[64, 96, 128], out_channels=64, num_outs=3),
    decode_head=dict(
        type='FPNHead',
        in_channels=[64, 64, 64],
        in_index=[0, 1, 2],
        feature_strides=[2, 4, 8],
        channels=64,
        dropout_ratio=0.1,
        num_classes={{_base_.num_classes}},
        norm_cfg=dict(type='GN', num_groups=8),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

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
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# mmdet's own RetinaNet config (a cross-package base) with a tiny pixel-space diffusion backbone.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)
model = dict(
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, pad_size_divisor=8),
    backbone=dict(
        _delete_=True,
        type='genrep.DiffusionBackbone',
        out_indices=(1, 2, 3),
        denoiser=dict(
            type='UNet2DDenoiser',
            config=dict(
                sample_size=64, in_channels=3, out_channels=3,
                block_out_channels=(8, 16, 16, 32), layers_per_block=1,
                down_block_types=('DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'DownBlock2D'),
                up_block_types=('UpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'),
                norm_num_groups=4, num_class_embeds=81))),
    neck=dict(in_channels=[16, 16, 32], out_channels=32, start_level=0, num_outs=4),
    bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32, stacked_convs=1,
                   anchor_generator=dict(strides=[2, 4, 8, 16])))

# mmdet's own Faster R-CNN config (a cross-package base) with a tiny pixel-space diffusion backbone
# (decoder strides 2, 4, 8 -> FPN levels 2..16) and shrunken RPN / RoI heads, for CPU tests.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)
num_classes = 4
model = dict(
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=False,
                           pad_size_divisor=16),
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
                norm_num_groups=4, num_class_embeds=num_classes + 1))),
    neck=dict(in_channels=[16, 16, 32], out_channels=32, start_level=0, num_outs=4),
    rpn_head=dict(
        in_channels=32, feat_channels=32,
        anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0], strides=[2, 4, 8, 16])),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0), out_channels=32,
            featmap_strides=[2, 4, 8, 16], finest_scale=16),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=20)))

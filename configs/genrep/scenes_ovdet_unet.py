# Open-vocabulary detection on the embedded scenes (`make scenes`: 400 train / 100 val scenes of
# 128 x 128 px, photo cut-outs on background photos; coco/annotations/instances_*_coarse.json name
# each object by its super-category, 13 base / 4 novel, novel objects unannotated in train): a stock
# mmdet Faster R-CNN whose backbone is genrep.DiffusionBackbone over a small pixel-space
# class-conditional diffusers UNet2DModel (from scratch: no pretrained diffusion model exists for
# these scenes), an FPN over three decoder levels, mmdet's RPN and a StandardRoIHead whose box head
# scores each RoI by cosine to the class names' all-MiniLM-L6-v2 embeddings with a learned
# background (genrep.OpenVocabBBoxHead, paper A.4 after BARON). Trained on the base names;
# OpenVocabularyHook hands the head all 17 names at validation and test. AP50 over all, base and
# novel classes by mmdet's OVCocoMetric; test boxes drawn by mmdet's DetVisualizationHook. Sized
# for 2 CPU cores: 64 px, a narrow UNet, 600 iterations of 8. The GenRep chain on it:
# scenes_ovdet_genrep_stage*.py.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', 'mmdet::_base_/default_runtime.py',
          '../_base_/models/scenes_unet_denoiser.py']
default_scope = 'mmdet'
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

data_root = 'data/scenes/coco/'
# category_split_coarse.json of make_scenes.py --seed 0 (tests/test_configs check they agree)
base_classes = ('bird', 'clothing', 'fruit', 'holiday item', 'mammal', 'musical instrument',
                'plant', 'sea creature', 'small creature', 'space object', 'sports gear',
                'street object', 'vehicle')
novel_classes = ('flower', 'household object', 'tool', 'vegetable')
all_classes = tuple(sorted(base_classes + novel_classes))
image_size = (64, 64)  # the 128 px scenes resized: 2 CPU cores' budget

model = dict(
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5],  # [-1, 1], the diffusion model's range
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_size_divisor=16),
    backbone=dict(
        _delete_=True,
        type='genrep.DiffusionBackbone',
        timestep=0,
        out_indices=(1, 2, 3),  # strides 2, 4, 8
        denoiser=dict(
            type='UNet2DDenoiser',
            config=dict(
                _base_.scenes_unet_config,
                block_out_channels=(16, 32, 64, 64),
                # the base classes condition generation (GenRep) + the null class
                num_class_embeds=len(base_classes) + 1))),
    neck=dict(in_channels=[32, 64, 64], out_channels=64, num_outs=4),  # strides 2..16
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0], strides=[2, 4, 8, 16])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, featmap_strides=[2, 4, 8, 16], finest_scale=16),
        bbox_head=dict(
            type='genrep.OpenVocabBBoxHead',
            class_names=base_classes,
            num_classes=None,
            text_encoder=dict(type='genrep.MiniLMTextEncoder'),
            in_channels=64,
            fc_out_channels=256,
            reg_class_agnostic=True)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(score_thr=0.01, max_per_img=50)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        ann_file='annotations/instances_train_coarse.json',
        data_prefix=dict(img='train2017/'),
        metainfo=dict(classes=base_classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        ann_file='annotations/instances_val_coarse.json',
        data_prefix=dict(img='val2017/'),
        metainfo=dict(classes=all_classes, base_classes=base_classes,
                      novel_classes=novel_classes),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='OVCocoMetric', metric='bbox',
                     ann_file=data_root + 'annotations/instances_val_coarse.json')
test_evaluator = val_evaluator

max_iters = 600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='genrep.OpenVocabularyHook')]
default_hooks = dict(
    preemption=dict(type='genrep.PreemptionHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='genrep.CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    visualization=dict(type='DetVisualizationHook', draw=True, interval=10, score_thr=0.3))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)

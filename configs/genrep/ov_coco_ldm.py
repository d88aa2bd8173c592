# Open-vocabulary detection on COCO (Sec. 4, OV-COCO: AP50 on the 17 novel / 48 base / all 65
# classes) with a latent diffusion backbone: a stock mmdet Faster R-CNN whose backbone is
# genrep.DiffusionBackbone (Stable Diffusion's UNet2DConditionModel read once at t = 0 with the
# null class, over AutoencoderKL latents), an FPN over the four decoder levels, mmdet's RPN and a
# StandardRoIHead whose box head maps each RoI feature to a pseudo-word embedding scored by cosine
# to the CLIP text embeddings of the class names, with a learned background embedding
# (genrep.OpenVocabBBoxHead; paper A.4 after BARON). Trained on the 48 base classes
# (annotations/instances_train2017_ov_base.json from tools/dataset_converters/ov_coco_split.py);
# OpenVocabularyHook hands the head all 65 names at validation and test; mmdet's OVCocoMetric
# scores AP50 base / novel / all. `pretrained`: a local diffusers checkpoint directory with the
# `unet/`, `vae/`, `text_encoder/` and `tokenizer/` subfolders of StableDiffusionPipeline's
# save_pretrained; `clip_text_model`: a local CLIP text model (CLIPTextModelWithProjection +
# CLIPTokenizer saved with save_pretrained). The GenRep stage-1 variant:
# ov_coco_ldm_genrep_stage1.py.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py', '../_base_/datasets/ov_coco_split.py',
    '../_base_/models/stable_diffusion_backbone.py'
]
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

pretrained = 'checkpoints/stable-diffusion-v1-5'
# CLIP ViT-B/16's text encoder (the paper names none; BARON, which A.4 follows, uses ViT-B/32's:
# point this at a B/32 folder to match it).
clip_text_model = 'checkpoints/clip-vit-base-patch16'
base_classes = {{_base_.ov_coco_base_classes}}
novel_classes = {{_base_.ov_coco_novel_classes}}
all_classes = {{_base_.ov_coco_classes}}
# The VAE halves the resolution 3 times and the UNet's decoder works at strides 1, 2, 4, 8 of the
# latent: features at 8, 16, 32, 64 input pixels, inputs padded to multiples of 64.
size_divisor = 64

model = dict(
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5],  # [-1, 1] RGB, the range of the VAE
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_size_divisor=size_divisor),
    backbone=dict(
        _base_.sd_backbone,
        _delete_=True,
        # the base classes (config checks compare with the dataset)
        denoiser=dict(_base_.sd_unet, num_classes=48),
        # The class contexts that p(x|y) of the GenRep teacher and generation read start as SD's
        # own text context of 'a photograph of a <name>.' for the base names (the training
        # vocabulary); the null class of the perception pass is the empty prompt.
        class_prompts=dict(pretrained=pretrained, class_names=base_classes)),
    # SD 1.x block_out_channels in increasing stride order; one extra level by max pooling.
    neck=dict(in_channels=_base_.sd_feature_channels, out_channels=256, num_outs=5),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
        bbox_head=dict(
            type='genrep.OpenVocabBBoxHead',
            class_names=base_classes,
            num_classes=None,
            text_encoder=dict(type='genrep.CLIPTextEncoder', model_dir=clip_text_model),
            reg_class_agnostic=True)),
    test_cfg=dict(rcnn=dict(score_thr=0.0001)))

# OV-COCO: train on the base-only file, test on the 65 classes (mmdet's coco2ovd filtering).
train_dataloader = dict(
    batch_size=2,  # x 8 GPUs = the paper's batch of 16
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        ann_file='annotations/instances_train2017_ov_base.json',
        metainfo=dict(classes=base_classes)))
val_dataloader = dict(
    dataset=dict(
        ann_file='annotations/instances_val2017_ov_all.json',
        metainfo=dict(classes=all_classes, base_classes=base_classes,
                      novel_classes=novel_classes)))
test_dataloader = val_dataloader
val_evaluator = dict(type='OVCocoMetric',
                     ann_file='data/coco/annotations/instances_val2017_ov_all.json')
test_evaluator = val_evaluator

# Paper Sec. 4 "Training": 40k iterations on COCO, batch 16, Adam, learning rate 2e-3, weight
# decay 1e-4; a 500-iteration warm-up and mmdet's x0.1 steps at 8/10 and 9/10 of the schedule.
max_iters = 40000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8), int(max_iters * 0.9)], gamma=0.1)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters // 8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='genrep.OpenVocabularyHook')]
default_hooks = dict(
    preemption=dict(type='genrep.PreemptionHook'),
    checkpoint=dict(type='genrep.CheckpointHook', by_epoch=False, interval=max_iters // 8,
                    max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=16)

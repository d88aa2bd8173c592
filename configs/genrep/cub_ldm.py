# Fine-grained classification on CUB-200-2011 (Sec. 4, Table 1) with a latent diffusion backbone: a
# stock mmpretrain ImageClassifier whose backbone is genrep.DiffusionBackbone (Stable Diffusion's
# UNet2DConditionModel read once at t = 0 with the null class, over AutoencoderKL latents), global
# average pooling of the deepest decoder feature and a single linear layer (paper A.4), on
# mmpretrain's CUB dataset (data/CUB_200_2011 as the official archive unpacks: images/,
# images.txt, image_class_labels.txt, train_test_split.txt, classes.txt; 5,994 / 5,794 images)
# and its 448 px pipelines (resize 600, random crop and horizontal flip; test centre crop).
# `pretrained` is a local diffusers checkpoint directory (unet/, vae/, text_encoder/, tokenizer/
# of a StableDiffusionPipeline's save_pretrained); the class table of the UNet (what GenRep's
# image-level teacher reads) starts from SD's text context of 'a photograph of a <bird name>.'.
_base_ = [
    'mmpretrain::_base_/datasets/cub_bs8_448.py', 'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/stable_diffusion_backbone.py'
]
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

pretrained = 'checkpoints/stable-diffusion-v1-5'
num_classes = 200
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[127.5, 127.5, 127.5],  # [-1, 1] RGB, the range of the VAE
    std=[127.5, 127.5, 127.5],
    to_rgb=True)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        _base_.sd_backbone,
        denoiser=dict(_base_.sd_unet, num_classes=num_classes),
        class_prompts=dict(pretrained=pretrained, class_names='mmpretrain.CUB')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=1280,  # SD 1.x's deepest decoder level
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

# Paper Sec. 4 "Training": random cropping and horizontal flipping (the base pipelines), AdamW,
# learning rate 1e-3, weight decay 0.05, batch 256 (8 GPUs x 32), 50 epochs; cosine decay after a
# 5-epoch linear warm-up (the paper gives no schedule; mmpretrain's fine-tuning default).
train_dataloader = dict(batch_size=32, num_workers=4)
val_dataloader = dict(batch_size=32, num_workers=4)
test_dataloader = val_dataloader
max_epochs = 50
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=5, end=max_epochs)
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(
    preemption=dict(type='genrep.PreemptionHook'),
    checkpoint=dict(type='genrep.CheckpointHook', interval=5, max_keep_ckpts=1, save_best='auto'))

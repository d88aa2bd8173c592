# Closed-set semantic segmentation on ADE20K-150 (Sec. 4, Table 3) with a latent diffusion backbone:
# a stock mmseg EncoderDecoder whose backbone is genrep.DiffusionBackbone (Stable Diffusion's
# UNet2DConditionModel read once at t = 0 with the null class, over AutoencoderKL latents) and
# mmseg's Mask2Former head (paper A.4), on mmseg's own Mask2Former ADE20K config: its dataset,
# IoUMetric, 160k-iteration PolyLR schedule, paramwise multipliers (backbone x0.1) and gradient
# clipping. `pretrained` is a local diffusers checkpoint directory with the `unet/`, `vae/`,
# `text_encoder/` and `tokenizer/` subfolders of a StableDiffusionPipeline's save_pretrained (SD 1.5
# by default; the paper's Table 3 LDM rows). A config that inherits this one and sets `pretrained`
# changes every use of it.
#
# No neck: Mask2Former's MSDeformAttnPixelDecoder already is the neck over the four decoder levels
# (per-level 1x1 projections and GroupNorm, deformable attention across the three coarsest, an FPN
# merge into the finest for the mask features); an FPN before it would repeat that work. (The
# paper's Sec. 3.1 names an FPN after VPD; the detection configs have one, mmdet's.)
#
# The perception pass and VPD's (wl-zhao/VPD, which Sec. 3.1 follows), compared:
#   VPD: latents = the VAE posterior's mode, UNSCALED (no x0.18215), timestep t = 1, the
#     cross-attention context the CLIP embeddings of all class names through a trained
#     TextAdapter, features = the outputs of output_blocks 1, 4, 7 and the last (the middle of
#     each decoder level) with the class-token cross-attention maps concatenated.
#   here: latents = the posterior mean (= its mode) x the VAE's scaling_factor, the scale the UNet
#     was trained on; t = 0 (the clean image, Sec. 3.1's single noise-free pass); the context the
#     null class (SD's empty prompt: the label is unknown at test, where Sec. 3.1's c(y) would need
#     it); features = each decoder level's last activations before its upsampler, no attention
#     maps. The reason: the same pass must serve the teacher and generation, which read the
#     denoiser as it was trained (scaled latents, class context per class), and a label-free
#     context keeps train and test alike.
_base_ = ['mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
          '../_base_/models/stable_diffusion_backbone.py']
custom_imports = dict(imports=['mmdet.models', 'genrep'], allow_failed_imports=False)

pretrained = 'checkpoints/stable-diffusion-v1-5'
num_classes = 150
# Paper Sec. 4 "Training": images cropped to 768 x 768.
crop_size = (768, 768)
# The VAE halves the resolution 3 times and the UNet's decoder works at strides 1, 2, 4, 8 of the
# latent: features at 8, 16, 32, 64 input pixels, and inputs padded to multiples of 64.
size_divisor = 64

data_preprocessor = dict(
    # [-1, 1] RGB, the range of the VAE.
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    size=crop_size,
    test_cfg=dict(size_divisor=size_divisor))
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _base_.sd_backbone,
        _delete_=True,
        denoiser=dict(_base_.sd_unet, num_classes=num_classes),
        # The cross-attention context of class y (what p(x|y) of the teacher and the generation
        # branch read) starts as SD's own text context of 'a photograph of a <name>.' and trains
        # from there; the null class of the perception pass is the empty prompt, SD's
        # unconditional context.
        class_prompts=dict(pretrained=pretrained, class_names='mmseg.ADE20KDataset')),
    decode_head=dict(
        # SD 1.x block_out_channels, in increasing stride order (DiffusionBackbone.out_channels).
        in_channels=_base_.sd_feature_channels,
        strides=[8, 16, 32, 64],
        num_classes=num_classes))

# mmseg's Mask2Former ADE20K pipelines (its 640 Swin configs) scaled to the 768 crop: shortest edge
# 384..1536 at train, 768 at test (the longest edge at most 4 x the crop).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomChoiceResize',
        scales=[int(crop_size[0] * x * 0.1) for x in range(5, 21)],
        resize_type='ResizeShortestEdge',
        max_size=4 * crop_size[0]),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(4 * crop_size[0], crop_size[0]), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
# Batch 16 (8 GPUs x 2): the paper gives none for segmentation and follows Mask2Former
# (Cheng et al., 2022), whose ADE20K batch is 16.
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# Paper Sec. 4 "Training": AdamW, learning rate 2e-4, weight decay 1e-4, 160k iterations on
# ADE20K (the 160k PolyLR schedule, train_cfg and the backbone's x0.1 come from the base).
optim_wrapper = dict(optimizer=dict(lr=2e-4, weight_decay=1e-4))
# genrep's checkpoints (atomic, with every rank's random states) and preemption (SIGTERM / SIGUSR1:
# finish the iteration, save it, exit 75); the base's interval and by_epoch are kept.
default_hooks = dict(
    preemption=dict(type='genrep.PreemptionHook'),
    checkpoint=dict(type='genrep.CheckpointHook'))

# What the open-vocabulary detection configs on a Diffusion Transformer share (ov_coco_dit.py,
# ov_lvis_dit.py): diffusers' DiTTransformer2DModel read at t = 0 with the null class over the
# AutoencoderKL latents of a local DiTPipeline directory (`transformer/` and `vae/`), DiT-XL/2-512
# by default, and the images it sees.
#
# Token grid (as ade20k_dit.py): a DiT is trained on one grid, sample_size / patch_size tokens a
# side (DiT-XL/2-512: a 64 x 64 latent, 32 x 32 tokens); diffusers would interpolate its sin-cos
# position embedding for another. So every image is resized to fit in 8 x sample_size = 512 pixels
# (aspect kept) and the data preprocessor pads each batch to multiples of 512 (dit_image_size),
# i.e. to exactly 512 x 512 (padding bottom-right, ViTDet's fixed-size input): every forward, train
# or test, sees the 32 x 32 tokens. Smaller inputs than the LDM configs' 1333 x 800.
#
# Features: blocks 6, 13, 20 and 27 of 28, 1152 channels each, resampled x2, x1, x1/2, x1/4 from
# the stride-16 token map (genrep.DiTDenoiser): strides 8, 16, 32, 64 as for the UNet.
dit_pretrained = 'checkpoints/DiT-XL-2-512'
dit_sample_size = 64  # the checkpoint's transformer/config.json sample_size
dit_image_size = 8 * dit_sample_size
dit_vae = dict(pretrained=dit_pretrained, subfolder='vae')
dit_denoiser = dict(type='DiTDenoiser', pretrained=dit_pretrained, subfolder='transformer')
dit_feature_channels = [1152, 1152, 1152, 1152]
dit_backbone = dict(
    type='genrep.DiffusionBackbone', timestep=0, vae=dit_vae, denoiser=dit_denoiser)
dit_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(dit_image_size, dit_image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
dit_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(dit_image_size, dit_image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]

# Closed-set semantic segmentation on ADE20K-150 (Table 3, the DiT row) with a Diffusion Transformer
# backbone: ade20k_ldm.py with genrep.DiTDenoiser (diffusers' DiTTransformer2DModel, latent, read
# at t = 0 with the null class) over the same AutoencoderKL. `pretrained` is a local DiTPipeline
# directory (its `transformer/` and `vae/` subfolders), DiT-XL/2-512 by default.
#
# Crop and token grid. A DiT is trained on one token grid, sample_size / patch_size per side (DiT-
# XL/2-512: a 64 x 64 latent, 32 x 32 tokens); diffusers would recompute (interpolate) its sin-cos
# position embedding for another grid, a grid the model never saw. So the crop is the DiT's native
# input, 8 x sample_size = 512 pixels (the paper's 768 would need a DiT trained at sample_size 96),
# and testing slides 512 x 512 windows (stride 2/3 of the window, as mmseg's 512 configs) over
# images resized to a 512 shortest edge, so that every forward, train or test, sees exactly the
# 32 x 32 tokens. With no padding at test (a padded pad_shape would make mmseg's
# Mask2FormerHead.predict resize a window's masks to the whole image), an image whose shorter
# side stays under 512 after the resize (aspect ratio over 4) is run whole and must be a multiple
# of 64.
#
# Features: blocks 6, 13, 20 and 27 of 28 (the last of each quarter), 1152 channels each,
# resampled x2, x1, x1/2, x1/4 from the stride-16 token map: strides 8, 16, 32, 64 as for the UNet.
_base_ = ['./ade20k_ldm.py']

pretrained = 'checkpoints/DiT-XL-2-512'
dit_sample_size = 64  # the checkpoint's transformer/config.json sample_size
crop_size = (8 * dit_sample_size, 8 * dit_sample_size)

data_preprocessor = dict(size=crop_size, test_cfg=None)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='genrep.DiffusionBackbone',
        timestep=0,
        vae=dict(pretrained=pretrained, subfolder='vae'),
        denoiser=dict(type='DiTDenoiser', pretrained=pretrained, subfolder='transformer')),
    decode_head=dict(in_channels=[1152, 1152, 1152, 1152], strides=[8, 16, 32, 64]),
    test_cfg=dict(
        mode='slide', crop_size=crop_size, stride=(2 * crop_size[0] // 3, 2 * crop_size[1] // 3)))

# ade20k_ldm.py's pipelines with their crop-dependent steps at this crop.
crop_steps = dict(
    RandomChoiceResize=dict(
        scales=[int(crop_size[0] * x * 0.1) for x in range(5, 21)], max_size=4 * crop_size[0]),
    RandomCrop=dict(crop_size=crop_size),
    Resize=dict(scale=(4 * crop_size[0], crop_size[0])))
train_pipeline = [dict(step, **crop_steps.get(step['type'], {})) for step in _base_.train_pipeline]
test_pipeline = [dict(step, **crop_steps.get(step['type'], {})) for step in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

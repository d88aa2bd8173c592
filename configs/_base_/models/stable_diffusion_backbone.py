# The perception backbone on Stable Diffusion 1.5 (a local diffusers directory), as the dense and
# classification configs on it use it (ade20k_ldm.py, nyuv2_ldm.py, cub_ldm.py, ov_coco_ldm.py):
# genrep.DiffusionBackbone reading SD's UNet once at t = 0 over the VAE latents. A config fills in
# the denoiser's class count (`denoiser=dict(_base_.sd_unet, num_classes=...)`) and the class
# prompts, and reads SD 1.x's decoder features: `sd_feature_channels` (block_out_channels in
# increasing stride order) at strides 8, 16, 32, 64 of the input.
sd_pretrained = 'checkpoints/stable-diffusion-v1-5'
sd_backbone = dict(
    type='genrep.DiffusionBackbone', timestep=0, vae=dict(pretrained=sd_pretrained, subfolder='vae'))
sd_unet = dict(type='UNet2DConditionDenoiser', pretrained=sd_pretrained, subfolder='unet')
sd_feature_channels = [320, 640, 1280, 1280]

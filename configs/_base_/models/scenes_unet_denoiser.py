# The small pixel-space diffusers UNet2DModel of the scenes jobs (scenes_unet.py for segmentation
# and depth, scenes_ovdet_unet.py for detection): 64 px RGB in and eps out, one layer a block,
# attention at the deepest level. Each perception config sets its widths and its class count
# (`config=dict(_base_.scenes_unet_config, block_out_channels=..., num_class_embeds=...)`).
scenes_unet_config = dict(
    sample_size=64,
    in_channels=3,
    out_channels=3,
    layers_per_block=1,
    down_block_types=('DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D'),
    up_block_types=('AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'),
    norm_num_groups=8)

# The tiny UNet that the tiny configs put in place of the main job's (a variable, not a model, so
# that a config can take it beside a base that defines `model`).
tiny_unet = dict(block_out_channels=(8, 16, 16, 32), norm_num_groups=4, attention_head_dim=8)

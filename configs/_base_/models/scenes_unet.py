# The perception model's body in the scenes jobs on mmseg (scenes_seg_unet.py, scenes_depth_unet.py):
# genrep.DiffusionBackbone over a small pixel-space, class-conditional diffusers UNet2DModel
# (trained from scratch: no pretrained diffusion model exists for these scenes) on 64 px inputs
# scaled to [-1, 1], the diffusion model's range. Each config sets the model type and its head.
_base_ = ['./scenes_unet_denoiser.py']
num_classes = 17
crop_size = (64, 64)  # the 128 px scenes resized: 2 CPU cores' budget
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='genrep.DiffusionBackbone',
        timestep=0,
        out_indices=(1, 2, 3),  # strides 2, 4, 8 (stride 1 costs most and adds little)
        denoiser=dict(
            type='UNet2DDenoiser',
            config=dict(
                _base_.scenes_unet_config,
                block_out_channels=(32, 64, 96, 128),
                num_class_embeds=num_classes + 1))),  # + the null class of the perception pass
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

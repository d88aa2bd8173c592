# An mmpretrain ImageClassifier whose backbone is a small pixel-space, class-conditional diffusers
# UNet2DModel read once at t = 0 (DiffusionBackbone). The head reads the deepest decoder feature.
# The UNet learns its variance, so that the same denoiser serves GenRep's reverse chain (stage 1-2).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='genrep.DiffusionBackbone',
        timestep=0,
        denoiser=dict(
            type='UNet2DDenoiser',
            config=dict(
                sample_size=32,
                in_channels=1,
                out_channels=2,  # eps and the learned-range variance values (improved DDPM)
                block_out_channels=(16, 32, 64, 128),
                layers_per_block=1,
                down_block_types=('DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D'),
                up_block_types=('AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'),
                norm_num_groups=8,
                num_class_embeds=11,  # 10 classes + the null class used by perception
            ),
        ),
    ),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, ),
    ),
)

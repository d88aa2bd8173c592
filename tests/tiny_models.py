"""Configs of tiny, randomly initialised diffusers models shared by the tests."""


def unet2d_cfg(in_channels=1, num_classes=10, learn_sigma=False):
    """A 4-level class-conditional UNet2DModel (feature strides 1, 2, 4, 8)."""
    return dict(
        type='genrep.UNet2DDenoiser',
        config=dict(
            sample_size=16,
            in_channels=in_channels,
            out_channels=in_channels * (2 if learn_sigma else 1),
            block_out_channels=(8, 16, 16, 32),
            layers_per_block=1,
            down_block_types=('DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D'),
            up_block_types=('AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'),
            norm_num_groups=4,
            attention_head_dim=8,
            num_class_embeds=num_classes + 1,
        ))


def unet2d_condition_cfg(num_classes=10):
    """A 4-level latent UNet2DConditionModel with cross-attention (4 latent channels)."""
    return dict(
        type='genrep.UNet2DConditionDenoiser',
        num_classes=num_classes,
        num_tokens=2,
        config=dict(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(8, 16, 16, 32),
            layers_per_block=1,
            down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D', 'DownBlock2D',
                              'DownBlock2D'),
            up_block_types=('UpBlock2D', 'UpBlock2D', 'UpBlock2D', 'CrossAttnUpBlock2D'),
            cross_attention_dim=16,
            attention_head_dim=4,
            norm_num_groups=4,
        ))


def dit_cfg(in_channels=4, num_classes=10, learn_sigma=True):
    """A 4-block DiTTransformer2DModel with patch size 2."""
    return dict(
        type='genrep.DiTDenoiser',
        config=dict(
            sample_size=8,
            in_channels=in_channels,
            out_channels=in_channels * (2 if learn_sigma else 1),
            patch_size=2,
            num_layers=4,
            num_attention_heads=2,
            attention_head_dim=8,
            num_embeds_ada_norm=num_classes,
        ))


def vae_cfg():
    """A 2-level AutoencoderKL: 3 channels -> 4 latent channels at 1/2 resolution."""
    return dict(config=dict(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 16),
        down_block_types=('DownEncoderBlock2D', 'DownEncoderBlock2D'),
        up_block_types=('UpDecoderBlock2D', 'UpDecoderBlock2D'),
        norm_num_groups=4,
        layers_per_block=1,
    ))

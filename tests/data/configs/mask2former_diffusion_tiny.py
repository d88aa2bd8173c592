# mmseg's own Mask2Former ADE20K config (a cross-package base), with a tiny latent diffusion
# backbone (VAE + UNet2DConditionModel) and a shrunken head, for CPU tests of the stack.
_base_ = ['mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmdet.models', 'genrep'], allow_failed_imports=False)
num_classes = 4
data_preprocessor = dict(size=(64, 64), mean=[127.5] * 3, std=[127.5] * 3)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='genrep.DiffusionBackbone',
        vae=dict(config=dict(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
            down_block_types=('DownEncoderBlock2D', 'DownEncoderBlock2D'),
            up_block_types=('UpDecoderBlock2D', 'UpDecoderBlock2D'),
            norm_num_groups=4, layers_per_block=1)),
        denoiser=dict(
            type='UNet2DConditionDenoiser',
            num_classes=num_classes,
            config=dict(
                sample_size=32, in_channels=4, out_channels=4,
                block_out_channels=(8, 16, 16, 32), layers_per_block=1,
                down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D', 'DownBlock2D',
                                  'DownBlock2D'),
                up_block_types=('UpBlock2D', 'UpBlock2D', 'UpBlock2D', 'CrossAttnUpBlock2D'),
                cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4))),
    decode_head=dict(
        in_channels=[8, 16, 16, 32],
        strides=[2, 4, 8, 16],
        feat_channels=32,
        out_channels=32,
        num_classes=num_classes,
        num_queries=8,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=8),
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=32, num_heads=4, num_points=2),
                    ffn_cfg=dict(embed_dims=32, feedforward_channels=64))),
            positional_encoding=dict(num_feats=16)),
        positional_encoding=dict(num_feats=16),
        transformer_decoder=dict(
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=32, num_heads=4),
                cross_attn_cfg=dict(embed_dims=32, num_heads=4),
                ffn_cfg=dict(embed_dims=32, feedforward_channels=64))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=256)))

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


def write_tiny_clip(folder, projection_dim=24, hidden_size=32, with_model=True):
    """A CLIP tokenizer (a byte-pair vocab.json / merges.txt of single characters and two merges,
    written here: nothing is downloaded) and (``with_model``) a randomly initialised (seeded)
    CLIPTextModelWithProjection, saved as transformers' save_pretrained lays them out."""
    import json
    import os
    import os.path as osp
    import string
    import tempfile

    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer
    symbols = string.ascii_lowercase + string.digits + ".,'-"
    merges = ['d o', 'do g</w>', 'c a', 'ca t</w>']
    tokens = (list(symbols) + [s + '</w>' for s in symbols] + [m.replace(' ', '') for m in merges] +
              ['<|startoftext|>', '<|endoftext|>'])
    vocab = {token: i for i, token in enumerate(tokens)}
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as source:
        with open(osp.join(source, 'vocab.json'), 'w') as f:
            json.dump(vocab, f)
        with open(osp.join(source, 'merges.txt'), 'w') as f:
            f.write('#version: 0.2\n' + '\n'.join(merges) + '\n')
        CLIPTokenizer(osp.join(source, 'vocab.json'),
                      osp.join(source, 'merges.txt')).save_pretrained(folder)
    if not with_model:
        return folder
    config = CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
        projection_dim=projection_dim,
        bos_token_id=vocab['<|startoftext|>'], eos_token_id=vocab['<|endoftext|>'],
        pad_token_id=vocab['<|endoftext|>'])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        CLIPTextModelWithProjection(config).save_pretrained(folder)
    return folder

"""tools/model_converters on tiny checkpoints in the UPSTREAM key layouts.

The layouts are written by hand from the upstream modules: DiT's here (facebookresearch/DiT
models.py), latent-diffusion's in tests/upstream_layouts.py (openaimodel ``UNetModel``, the
``Encoder`` / ``Decoder`` of its KL and VQ first stages, ``ClassEmbedder``, ``LitEma``): every
parameter name and shape those modules create. The converters must consume exactly these keys;
the numbers are checked against the upstream computation written here (DiT's forward,
AttentionBlock's legacy multi-head attention) or against a tiny diffusers model mapped back to
the upstream names.
"""
import json
import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from upstream_layouts import (CIN_UNET, LSUN_UNET, VQ_DD, attention_block_layout,
                              first_stage_layout, ldm_yaml, openaimodel_layout, random_state,
                              upstream_ldm, write_ldm)

from conftest import load_tool


# -- DiT (models.py) ---------------------------------------------------------------------------

def dit_layout(depth, hidden, patch, in_channels, num_classes, learn_sigma, grid):
    """DiT's parameters: PatchEmbed, TimestepEmbedder (256 frequencies), LabelEmbedder (+1 row,
    the CFG null class), DiTBlocks (LayerNorms without affine, timm Attention / Mlp, adaLN-Zero),
    FinalLayer; pos_embed a frozen parameter."""
    out = in_channels * (2 if learn_sigma else 1)
    layout = {'x_embedder.proj.weight': (hidden, in_channels, patch, patch),
              'x_embedder.proj.bias': (hidden, ), 'pos_embed': (1, grid * grid, hidden),
              't_embedder.mlp.0.weight': (hidden, 256), 't_embedder.mlp.0.bias': (hidden, ),
              't_embedder.mlp.2.weight': (hidden, hidden), 't_embedder.mlp.2.bias': (hidden, ),
              'y_embedder.embedding_table.weight': (num_classes + 1, hidden),
              'final_layer.linear.weight': (patch * patch * out, hidden),
              'final_layer.linear.bias': (patch * patch * out, ),
              'final_layer.adaLN_modulation.1.weight': (2 * hidden, hidden),
              'final_layer.adaLN_modulation.1.bias': (2 * hidden, )}
    for i in range(depth):
        b = f'blocks.{i}.'
        layout.update({b + 'attn.qkv.weight': (3 * hidden, hidden),
                       b + 'attn.qkv.bias': (3 * hidden, ),
                       b + 'attn.proj.weight': (hidden, hidden), b + 'attn.proj.bias': (hidden, ),
                       b + 'mlp.fc1.weight': (4 * hidden, hidden),
                       b + 'mlp.fc1.bias': (4 * hidden, ),
                       b + 'mlp.fc2.weight': (hidden, 4 * hidden), b + 'mlp.fc2.bias': (hidden, ),
                       b + 'adaLN_modulation.1.weight': (6 * hidden, hidden),
                       b + 'adaLN_modulation.1.bias': (6 * hidden, )})
    return layout


def sincos_2d(hidden, grid):
    """DiT's fixed 2-D sin-cos position embedding (get_2d_sincos_pos_embed, no cls token)."""
    def one_axis(dim, positions):
        omega = 1.0 / 10000**(torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
        out = positions.reshape(-1)[:, None] * omega[None]
        return torch.cat([out.sin(), out.cos()], dim=1)
    h, w = torch.meshgrid(torch.arange(grid, dtype=torch.float64),
                          torch.arange(grid, dtype=torch.float64), indexing='xy')
    # DiT stacks (w, h) and embeds grid[0] (w) with the first half of the channels
    return torch.cat([one_axis(hidden // 2, h), one_axis(hidden // 2, w)], 1).float()[None]


def dit_forward(sd, x, t, y, patch, heads):
    """DiT.forward written from models.py: patchify + pos_embed, t and y embeddings summed,
    adaLN-Zero blocks, the final layer, unpatchify."""
    batch, _, height, width = x.shape
    tokens = F.conv2d(x, sd['x_embedder.proj.weight'], sd['x_embedder.proj.bias'], stride=patch)
    tokens = tokens.flatten(2).transpose(1, 2) + sd['pos_embed']
    hidden = tokens.shape[-1]
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    frequency = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    t_emb = F.linear(F.silu(F.linear(frequency, sd['t_embedder.mlp.0.weight'],
                                     sd['t_embedder.mlp.0.bias'])),
                     sd['t_embedder.mlp.2.weight'], sd['t_embedder.mlp.2.bias'])
    c = t_emb + sd['y_embedder.embedding_table.weight'][y]

    def norm(v):
        return F.layer_norm(v, (hidden, ), eps=1e-6)

    depth = len({k.split('.')[1] for k in sd if k.startswith('blocks.')})
    for i in range(depth):
        b = f'blocks.{i}.'
        mod = F.linear(F.silu(c), sd[b + 'adaLN_modulation.1.weight'],
                       sd[b + 'adaLN_modulation.1.bias'])
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=1)
        h = norm(tokens) * (1 + scale_msa[:, None]) + shift_msa[:, None]
        qkv = F.linear(h, sd[b + 'attn.qkv.weight'], sd[b + 'attn.qkv.bias'])
        qkv = qkv.reshape(batch, -1, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1) * (hidden // heads)**-0.5).softmax(-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, -1, hidden)
        out = F.linear(out, sd[b + 'attn.proj.weight'], sd[b + 'attn.proj.bias'])
        tokens = tokens + gate_msa[:, None] * out
        h = norm(tokens) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        h = F.gelu(F.linear(h, sd[b + 'mlp.fc1.weight'], sd[b + 'mlp.fc1.bias']),
                   approximate='tanh')
        tokens = tokens + gate_mlp[:, None] * F.linear(h, sd[b + 'mlp.fc2.weight'],
                                                       sd[b + 'mlp.fc2.bias'])
    shift, scale = F.linear(F.silu(c), sd['final_layer.adaLN_modulation.1.weight'],
                            sd['final_layer.adaLN_modulation.1.bias']).chunk(2, dim=1)
    out = F.linear(norm(tokens) * (1 + scale[:, None]) + shift[:, None],
                   sd['final_layer.linear.weight'], sd['final_layer.linear.bias'])
    channels = out.shape[-1] // patch**2
    grid_h, grid_w = height // patch, width // patch
    out = out.reshape(batch, grid_h, grid_w, patch, patch, channels)
    return torch.einsum('nhwpqc->nchpwq', out).reshape(batch, channels, height, width)


def test_dit_to_diffusers_reproduces_dits_forward(tmp_path):
    """A DiT .pt training checkpoint (model, ema, opt) in DiT's layout: the EMA weights are
    converted, and the diffusers model's output is DiT's forward for class labels, the null
    class and several timesteps."""
    from diffusers import DiTTransformer2DModel

    from genrep.diffusion.denoisers import DiTDenoiser
    converter = load_tool('tools/model_converters/dit_to_diffusers.py')
    depth, hidden, patch, heads, grid = 4, 32, 2, 4, 4
    layout = dit_layout(depth, hidden, patch, 4, 10, True, grid)
    ema = random_state(layout)
    ema['pos_embed'] = sincos_2d(hidden, grid)
    checkpoint = tmp_path / 'DiT-tiny.pt'
    torch.save({'model': {k: torch.zeros_like(v) for k, v in ema.items()}, 'ema': ema,
                'opt': {}}, checkpoint)

    converter.main([str(checkpoint), str(tmp_path / 'dit'), '--num-heads', str(heads)])
    converted = DiTTransformer2DModel.from_pretrained(str(tmp_path / 'dit')).eval()
    assert converted.config.num_layers == depth and converted.config.num_embeds_ada_norm == 10
    # genrep's wrapper embeds timesteps with DiT's frequencies (diffusers' DiT divides by 127)
    denoiser = DiTDenoiser(pretrained=str(tmp_path / 'dit')).eval()
    x = torch.randn(3, 4, 2 * grid, 2 * grid)
    t = torch.tensor([1, 500, 999])
    y = torch.tensor([0, 3, 10])  # 10: the null class of classifier-free guidance
    expected = dit_forward(ema, x, t, y, patch, heads)
    with torch.no_grad():
        torch.testing.assert_close(denoiser(x, t, y), expected, atol=2e-4, rtol=2e-4)
        # without the frequency fix only the timestep features differ: at t = 0 they agree
        zero = torch.zeros(3, dtype=torch.long)
        torch.testing.assert_close(converted(x, timestep=zero, class_labels=y).sample,
                                   dit_forward(ema, x, zero, y, patch, heads), atol=2e-4,
                                   rtol=2e-4)

    # The width names the heads of DiT-S/B/L/XL; other widths need --num-heads.
    with pytest.raises(ValueError, match='--num-heads'):
        converter.dit_config(ema)
    with pytest.raises(FileNotFoundError, match='absent.pt'):
        converter.read_dit_checkpoint(str(tmp_path / 'absent.pt'))


def test_upstream_layouts_convert_key_for_key():
    """Every key of the upstream layouts maps, and the converted names and shapes are exactly
    the diffusers models' (resblock_updown, varying head widths, spatial transformers, KL and
    VQ first stages with attention at a level)."""
    import diffusers
    converter = load_tool('tools/model_converters/ldm_to_diffusers.py')
    for unet, stage in ((LSUN_UNET, 'kl'), (CIN_UNET, 'vq')):
        config = ldm_yaml(unet, stage)
        name, diffusers_config, _ = converter.unet_diffusers_config(config)
        expected = {k: tuple(v.shape) for k, v in
                    getattr(diffusers, name)(**diffusers_config).state_dict().items()}
        state = random_state(openaimodel_layout(unet))
        converted = converter.convert_unet_weights(converter.unet_weights(state, False), unet)
        assert {k: tuple(v.shape) for k, v in converted.items()} == expected, name

        params = config['model']['params']['first_stage_config']['params']
        layout = first_stage_layout(params['ddconfig'], 4, params.get('n_embed'))
        name, diffusers_config = converter.first_stage_diffusers_config(config, 1.0)
        expected = {k: tuple(v.shape) for k, v in
                    getattr(diffusers, name)(**diffusers_config).state_dict().items()}
        weights = {k[len('first_stage_model.'):]: v for k, v in random_state(layout).items()}
        converted = converter.convert_first_stage_weights(weights, 2)
        assert {k: tuple(v.shape) for k, v in converted.items()} == expected, name

    # A key the YAML's UNet has no block for is named.
    state = random_state(openaimodel_layout(LSUN_UNET))
    state['model.diffusion_model.input_blocks.99.0.in_layers.0.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='input_blocks.99'):
        converter.convert_unet_weights(converter.unet_weights(state, False), LSUN_UNET)


def legacy_attention_block(x, weights, heads):
    """openaimodel AttentionBlock with QKVAttentionLegacy: GroupNorm(32), qkv Conv1d, the
    [B * heads, 3 * ch, T] split, q and k each scaled by ch^-1/4, proj_out, residual."""
    batch, channels = x.shape[:2]
    h = F.group_norm(x.reshape(batch, channels, -1), 32, weights['norm.weight'],
                     weights['norm.bias'], eps=1e-5)
    qkv = F.conv1d(h, weights['qkv.weight'], weights['qkv.bias'])
    length, ch = qkv.shape[-1], channels // heads
    q, k, v = qkv.reshape(batch * heads, 3 * ch, length).split(ch, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    attention = torch.einsum('bct,bcs->bts', q * scale, k * scale).softmax(-1)
    out = torch.einsum('bts,bcs->bct', attention, v).reshape(batch, channels, length)
    out = F.conv1d(out, weights['proj_out.weight'], weights['proj_out.bias'])
    return x + out.reshape(x.shape)


@pytest.mark.parametrize('channels,heads', [(64, 2), (96, 8)])
def test_attention_block_matches_upstream_legacy_attention(channels, heads):
    """The fused per-head qkv split and the imposed head count (LSUN's num_heads: 8 at every
    width) give openaimodel's attention, checked against its computation."""
    from diffusers.models.attention_processor import Attention

    from genrep.diffusion.denoisers import set_attention_heads
    converter = load_tool('tools/model_converters/ldm_to_diffusers.py')
    weights = {k[len('b.'):]: v for k, v in
               random_state(attention_block_layout('b.', channels), std=0.3).items()}
    layer = Attention(channels, heads=channels // 16, dim_head=16, eps=1e-5,
                      norm_num_groups=32, residual_connection=True, bias=True,
                      upcast_softmax=True, _from_deprecated_attn_block=True).eval()
    new = converter.convert_unet_weights(
        {f'middle_block.1.{k}': v for k, v in weights.items()},
        dict(LSUN_UNET, model_channels=channels, channel_mult=[1], num_heads=heads))
    layer.load_state_dict({k[len('mid_block.attentions.0.'):]: v for k, v in new.items()})
    set_attention_heads(layer, heads)
    x = torch.randn(2, channels, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), legacy_attention_block(x, weights, heads),
                                   atol=1e-5, rtol=1e-4)


def test_lsun_style_ldm_kl_scale_factor_heads_and_ema(tmp_path):
    """LSUN-Churches' LDM-KL-8 shape (num_heads at widths that differ per level,
    resblock_updown, scale-shift norm; scale_by_std: the scale_factor buffer in the checkpoint;
    LitEma weights): the converted UNet, given the heads the converter reports, reproduces the
    model; the AutoencoderKL carries the checkpoint's scale; the scheduler is LDM's."""
    import diffusers
    from diffusers import DDPMScheduler

    from genrep.diffusion.denoisers import UNet2DDenoiser
    converter = load_tool('tools/model_converters/ldm_to_diffusers.py')
    config = ldm_yaml(LSUN_UNET, 'kl', scale_by_std=True, loss_type='l1')
    name, diffusers_config, heads = converter.unet_diffusers_config(config)
    assert name == 'UNet2DModel' and heads == 2
    assert diffusers_config['downsample_type'] == 'resnet'
    trained, unet, vae = upstream_ldm(converter, config)
    assert set(k for k in trained if k.startswith('model.')) == set(openaimodel_layout(LSUN_UNET))
    # The EMA is what converts: the raw weights are shifted so that using them would show.
    ema = {'model_ema.' + k[len('model.'):].replace('.', ''): v.clone()
           for k, v in trained.items() if k.startswith('model.')}
    state = {**{k: v - 1.0 if k.startswith('model.') else v for k, v in trained.items()}, **ema,
             'model_ema.decay': torch.tensor(0.9999),
             'model_ema.num_updates': torch.tensor(5, dtype=torch.int),
             'scale_factor': torch.tensor(0.1875)}
    out = tmp_path / 'out'
    converter.main([*write_ldm(tmp_path, config, state), str(out)])

    record = json.loads((out / 'ldm_conversion.json').read_text())
    assert record['scaling_factor'] == 0.1875 and record['num_attention_heads'] == 2
    denoiser = UNet2DDenoiser(pretrained=str(out), subfolder='unet', num_classes=1,
                              num_attention_heads=2).eval()
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([3, 700])
    with torch.no_grad():
        expected = unet(x, t).sample
        # the added class table starts at zero: every class is the unconditional model
        torch.testing.assert_close(denoiser(x, t, torch.tensor([0, 1])), expected)
    converted_vae = diffusers.AutoencoderKL.from_pretrained(str(out / 'vae')).eval()
    assert converted_vae.config.scaling_factor == 0.1875
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(converted_vae.encode(images).latent_dist.mean,
                                   vae.encode(images).latent_dist.mean)
    scheduler = DDPMScheduler.from_pretrained(str(out / 'scheduler'))
    assert float(scheduler.betas[0]) == pytest.approx(0.0015)
    assert float(scheduler.betas[500].sqrt()) == pytest.approx(
        0.0015**0.5 + 500 / 999 * (0.0155**0.5 - 0.0015**0.5))

    # --no-ema converts the raw weights.
    converter.main([str(tmp_path / 'model.ckpt'), str(tmp_path / 'config.yaml'),
                    str(tmp_path / 'raw'), '--no-ema'])
    raw = diffusers.UNet2DModel.from_pretrained(str(tmp_path / 'raw' / 'unet'))
    torch.testing.assert_close(raw.conv_in.weight, unet.conv_in.weight - 1.0)
    # Without the heads the attention is another (diffusers' head width from config.json), and
    # a config that forgets them is refused.
    plain = diffusers.UNet2DModel.from_pretrained(str(out / 'unet')).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(x, t).sample, expected, atol=1e-4)
    with pytest.raises(ValueError, match='needs num_attention_heads=2'):
        UNet2DDenoiser(pretrained=str(out), subfolder='unet', num_classes=1)


def test_class_conditional_vq_ldm_class_embedder_read_by_the_denoiser(tmp_path):
    """cin-ldm-vq-f8's shape: spatial transformers cross-attending to one ClassEmbedder token,
    a VQ first stage (VQModelInterface, attention at a level) without scale_by_std: the
    converted folder has unet/, vqvae/ (scale 1) and the class table, and the denoiser built with
    class_embedding= gives the LDM's eps for each class."""
    import diffusers

    from genrep.diffusion.denoisers import UNet2DConditionDenoiser
    converter = load_tool('tools/model_converters/ldm_to_diffusers.py')
    cond = dict(target='ldm.modules.encoders.modules.ClassEmbedder',
                params=dict(embed_dim=16, key='class_label', n_classes=5))
    config = ldm_yaml(CIN_UNET, 'vq', cond)
    name, _, heads = converter.unet_diffusers_config(config)
    assert name == 'UNet2DConditionModel' and heads is None
    table = torch.randn(5, 16)
    state, unet, vq = upstream_ldm(converter, config,
                                   extra={'cond_stage_model.embedding.weight': table})
    assert set(state) == (set(openaimodel_layout(CIN_UNET))
                          | set(first_stage_layout(VQ_DD, 4, 32))
                          | {'cond_stage_model.embedding.weight'})
    out = tmp_path / 'out'
    converter.main([*write_ldm(tmp_path, config, state), str(out)])
    assert not (out / 'vae').exists() and (out / 'vqvae' / 'config.json').is_file()

    denoiser = UNet2DConditionDenoiser(
        num_classes=5, pretrained=str(out), subfolder='unet',
        class_embedding=str(out / 'class_embedding.safetensors')).eval()
    x, t, y = torch.randn(3, 4, 8, 8), torch.tensor([3, 400, 999]), torch.tensor([0, 4, 2])
    with torch.no_grad():
        expected = unet(x, t, encoder_hidden_states=table[y][:, None]).sample
        torch.testing.assert_close(denoiser(x, t, y), expected)
        # the null row (none in a 1000-row table) starts at the mean of the classes
        null = unet(x, t, encoder_hidden_states=table.mean(0).expand(3, 1, 16)).sample
        torch.testing.assert_close(denoiser(x, t, None), null)
    converted = diffusers.VQModel.from_pretrained(str(out / 'vqvae')).eval()
    assert converted.config.scaling_factor == 1.0
    images, latents = torch.randn(2, 3, 16, 16), torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(converted.encode(images).latents, vq.encode(images).latents)
        torch.testing.assert_close(converted.decode(latents).sample, vq.decode(latents).sample)

    with pytest.raises(ValueError, match=r'expected \[3 or 4, 16\]'):
        UNet2DConditionDenoiser(num_classes=3, pretrained=str(out), subfolder='unet',
                                class_embedding=str(out / 'class_embedding.safetensors'))


def test_converter_refuses_what_it_cannot_map(tmp_path):
    converter = load_tool('tools/model_converters/ldm_to_diffusers.py')
    config = ldm_yaml(CIN_UNET, 'vq')
    stage = config['model']['params']['first_stage_config']
    stage['target'] = 'ldm.models.autoencoder.IdentityFirstStage'
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match='IdentityFirstStage'):
        converter.read_original_config(str(path))
    with pytest.raises(KeyError, match='text encoders'):
        converter.class_embedding({'cond_stage_model.transformer.wte.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='scale_by_std'):
        converter.latent_scale_factor({}, ldm_yaml(LSUN_UNET, 'kl', scale_by_std=True))
    assert converter.latent_scale_factor({}, ldm_yaml(LSUN_UNET, 'kl', scale_factor=0.3)) == 0.3


def test_pretrained_folder_check_names_the_key(tmp_path):
    """A folder whose weights do not fill the model its config.json describes is refused before
    diffusers initialises anything at random: the missing, unexpected or mis-shaped key is
    named."""
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file, save_file

    from genrep.diffusion.denoisers import build_diffusers_model
    config = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
                  layers_per_block=1, down_block_types=('DownEncoderBlock2D', ) * 2,
                  up_block_types=('UpDecoderBlock2D', ) * 2)
    AutoencoderKL(**config).save_pretrained(str(tmp_path / 'vae'))
    assert type(build_diffusers_model(AutoencoderKL, pretrained=str(tmp_path),
                                      subfolder='vae')) is AutoencoderKL
    weights_file = tmp_path / 'vae' / 'diffusion_pytorch_model.safetensors'
    good = load_file(str(weights_file))

    weights = dict(good)
    del weights['decoder.conv_out.weight']
    save_file(weights, str(weights_file))
    with pytest.raises(ValueError, match=r'decoder\.conv_out\.weight \[3, 32, 3, 3\]'):
        build_diffusers_model(AutoencoderKL, pretrained=str(tmp_path), subfolder='vae')
    weights = dict(good, **{'encoder.conv_in.weight': torch.zeros(32, 4, 3, 3)})
    save_file(weights, str(weights_file))
    with pytest.raises(ValueError, match=r'encoder\.conv_in\.weight has shape \[32, 4, 3, 3\]'):
        build_diffusers_model(AutoencoderKL, pretrained=str(tmp_path), subfolder='vae')
    weights = dict(good, **{'encoder.extra.weight': torch.zeros(1)})
    save_file(weights, str(weights_file))
    with pytest.raises(ValueError, match=r'encoder\.extra\.weight is no weight'):
        build_diffusers_model(AutoencoderKL, pretrained=str(tmp_path), subfolder='vae')

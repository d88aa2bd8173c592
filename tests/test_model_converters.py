"""tools/model_converters on tiny randomly initialised checkpoints written here in the ORIGINAL key
layouts (DiT's models.py, CompVis LDM's openaimodel.py and autoencoder), built from a tiny diffusers
model by the inverse renaming written below from those architectures' names; the converted
directories load with from_pretrained and give the source model's outputs."""
import importlib.util
import os.path as osp
import re

import pytest
import torch
import yaml

from conftest import REPO_ROOT


def load_converter(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO_ROOT, 'tools', 'model_converters', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# DiT

def diffusers_to_dit(sd, num_layers, pos_embed):
    """A DiTTransformer2DModel state dict with DiT's names (embedders shared by all blocks)."""
    emb = 'transformer_blocks.0.norm1.emb.'
    dit = {'pos_embed': pos_embed,
           'x_embedder.proj.weight': sd['pos_embed.proj.weight'],
           'x_embedder.proj.bias': sd['pos_embed.proj.bias'],
           'y_embedder.embedding_table.weight': sd[emb + 'class_embedder.embedding_table.weight']}
    for p in ('weight', 'bias'):
        dit[f't_embedder.mlp.0.{p}'] = sd[emb + f'timestep_embedder.linear_1.{p}']
        dit[f't_embedder.mlp.2.{p}'] = sd[emb + f'timestep_embedder.linear_2.{p}']
        dit[f'final_layer.adaLN_modulation.1.{p}'] = sd[f'proj_out_1.{p}']
        dit[f'final_layer.linear.{p}'] = sd[f'proj_out_2.{p}']
        for i in range(num_layers):
            block = f'transformer_blocks.{i}.'
            dit[f'blocks.{i}.adaLN_modulation.1.{p}'] = sd[block + f'norm1.linear.{p}']
            dit[f'blocks.{i}.attn.qkv.{p}'] = torch.cat(
                [sd[block + f'attn1.to_{x}.{p}'] for x in 'qkv'])
            dit[f'blocks.{i}.attn.proj.{p}'] = sd[block + f'attn1.to_out.0.{p}']
            dit[f'blocks.{i}.mlp.fc1.{p}'] = sd[block + f'ff.net.0.proj.{p}']
            dit[f'blocks.{i}.mlp.fc2.{p}'] = sd[block + f'ff.net.2.{p}']
    return {k: v.clone() for k, v in dit.items()}


def test_dit_to_diffusers(tmp_path):
    from diffusers import DiTTransformer2DModel
    converter = load_converter('dit_to_diffusers')
    torch.manual_seed(0)
    source = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                   out_channels=8, num_layers=2, sample_size=8, patch_size=2,
                                   num_embeds_ada_norm=10).eval()
    for param in source.parameters():  # adaLN-Zero starts at zero: make every weight count
        torch.nn.init.normal_(param, std=0.3)
    # DiT has one timestep and one class embedder; diffusers a copy in each block.
    for block in source.transformer_blocks[1:]:
        block.norm1.emb.load_state_dict(source.transformer_blocks[0].norm1.emb.state_dict())
    dit = diffusers_to_dit(source.state_dict(), 2, source.pos_embed.pos_embed.clone())
    # A training checkpoint: the EMA weights are the ones converted.
    checkpoint = tmp_path / 'DiT-tiny.pt'
    torch.save({'model': {k: torch.zeros_like(v) for k, v in dit.items()}, 'ema': dit,
                'opt': {}}, checkpoint)

    converter.main([str(checkpoint), str(tmp_path / 'dit'), '--num-heads', '2'])
    converted = DiTTransformer2DModel.from_pretrained(str(tmp_path / 'dit')).eval()
    assert (tmp_path / 'dit' / 'diffusion_pytorch_model.safetensors').is_file()
    assert converted.config.num_layers == 2 and converted.config.num_embeds_ada_norm == 10
    x = torch.randn(3, 4, 8, 8)
    t = torch.tensor([1, 500, 999])
    y = torch.tensor([0, 3, 10])  # 10: the null class of classifier-free guidance
    with torch.no_grad():
        expected = source(x, timestep=t, class_labels=y).sample
        torch.testing.assert_close(converted(x, timestep=t, class_labels=y).sample, expected)

    # The width names the heads of DiT-S/B/L/XL; other widths need --num-heads.
    with pytest.raises(ValueError, match='--num-heads'):
        converter.dit_config(dit)
    with pytest.raises(FileNotFoundError, match='absent.pt'):
        converter.read_dit_checkpoint(str(tmp_path / 'absent.pt'))


# LDM

RESNET_NAMES = [('norm1', 'in_layers.0'), ('conv1', 'in_layers.2'),
                ('time_emb_proj', 'emb_layers.1'), ('norm2', 'out_layers.0'),
                ('conv2', 'out_layers.3'), ('conv_shortcut', 'skip_connection')]


def rename(suffix, pairs):
    for new, old in pairs:
        if suffix.startswith(new + '.'):
            return old + suffix[len(new):]
    return suffix


def legacy_attention(prefix, block, head_dim):
    """diffusers Attention -> AttentionBlock: norm, per-head fused qkv and proj_out (Conv1d)."""
    out = {f'{prefix}.norm.{p}': block[f'group_norm.{p}'] for p in ('weight', 'bias')}
    for p in ('weight', 'bias'):
        q, k, v = (block[f'to_{x}.{p}'] for x in 'qkv')
        heads = q.shape[0] // head_dim
        qkv = torch.stack([t.reshape(heads, head_dim, *t.shape[1:]) for t in (q, k, v)], 1)
        qkv = qkv.reshape(3 * q.shape[0], *q.shape[1:])
        out[f'{prefix}.qkv.{p}'] = qkv[..., None] if p == 'weight' else qkv
        proj = block[f'to_out.0.{p}']
        out[f'{prefix}.proj_out.{p}'] = proj[..., None] if p == 'weight' else proj
    return out


def diffusers_unet_to_ldm(model, legacy_head_dim=None):
    """UNet2DModel / UNet2DConditionModel -> openaimodel.UNetModel names under
    model.diffusion_model. (input_blocks: conv_in, then per level L resnet(+attention) blocks
    and a downsampler; output_blocks: per level L + 1 resnet(+attention) blocks, the last with
    the upsampler.)"""
    sd = model.state_dict()
    per_level = model.config.layers_per_block
    ldm, attention_blocks = {}, {}
    fixed = {'time_embedding.linear_1': 'time_embed.0', 'time_embedding.linear_2': 'time_embed.2',
             'conv_in': 'input_blocks.0.0', 'conv_norm_out': 'out.0', 'conv_out': 'out.2',
             'class_embedding': 'label_emb'}
    for key, value in sd.items():
        head, _, param = key.rpartition('.')
        if head in fixed:
            ldm[f'{fixed[head]}.{param}'] = value
            continue
        m = re.match(r'(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)'
                     r'\.(\d+)\.(.*)', key) or re.match(
                         r'(mid)_block\.(resnets|attentions)\.(\d+)\.(.*)', key)
        if m.group(1) == 'mid':
            kind, j, rest = m.group(2), int(m.group(3)), m.group(4)
            prefix = f'middle_block.{2 * j if kind == "resnets" else 1}'
        else:
            side, b, kind, j, rest = m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), \
                m.group(5)
            if side == 'down':
                index = b * (per_level + 1) + j + 1
                prefix = {'resnets': f'input_blocks.{index}.0',
                          'attentions': f'input_blocks.{index}.1',
                          'downsamplers': f'input_blocks.{(b + 1) * (per_level + 1)}.0.op'}[kind]
                rest = rest.replace('conv.', '') if kind == 'downsamplers' else rest
            else:
                index = b * (per_level + 1) + j
                last = b * (per_level + 1) + per_level
                has_attention = hasattr(model.up_blocks[b], 'attentions')
                prefix = {'resnets': f'output_blocks.{index}.0',
                          'attentions': f'output_blocks.{index}.1',
                          'upsamplers': f'output_blocks.{last}.{2 if has_attention else 1}'}[kind]
        if kind == 'resnets':
            ldm[f'{prefix}.{rename(rest, RESNET_NAMES)}'] = value
        elif kind == 'attentions' and legacy_head_dim:
            attention_blocks.setdefault(prefix, {})[rest] = value
        else:
            ldm[f'{prefix}.{rest}'] = value
    for prefix, block in attention_blocks.items():
        ldm.update(legacy_attention(prefix, block, legacy_head_dim))
    return {f'model.diffusion_model.{k}': v.clone() for k, v in ldm.items()}


def diffusers_vae_to_ldm(vae):
    """AutoencoderKL -> ldm.models.autoencoder.AutoencoderKL names under first_stage_model."""
    levels = len(vae.config.block_out_channels)
    attention = [('group_norm', 'norm'), ('to_q', 'q'), ('to_k', 'k'), ('to_v', 'v'),
                 ('to_out.0', 'proj_out')]
    ldm = {}
    for key, value in vae.state_dict().items():
        coder, _, rest = key.partition('.')
        if coder not in ('encoder', 'decoder'):
            ldm[key] = value
            continue
        rest = rest.replace('conv_norm_out', 'norm_out')
        m = re.match(r'(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.*)',
                     rest)
        mid = re.match(r'mid_block\.(resnets|attentions)\.(\d+)\.(.*)', rest)
        if m:
            side, b, kind, j, tail = m.groups()
            level = int(b) if side == 'down' else levels - 1 - int(b)
            if kind == 'resnets':
                rest = f'{side}.{level}.block.{j}.{tail.replace("conv_shortcut", "nin_shortcut")}'
            else:
                rest = f'{side}.{level}.{side}sample.{tail}'
        elif mid and mid.group(1) == 'resnets':
            rest = f'mid.block_{int(mid.group(2)) + 1}.{mid.group(3)}'
        elif mid:
            tail = rename(mid.group(3), attention)
            value = value[..., None, None] if value.dim() == 2 else value  # Conv2d 1x1
            rest = f'mid.attn_1.{tail}'
        ldm[f'{coder}.{rest}'] = value
    return {f'first_stage_model.{k}': v.clone() for k, v in ldm.items()}


def ldm_yaml(unet_params):
    return dict(model=dict(
        target='ldm.models.diffusion.ddpm.LatentDiffusion',
        params=dict(linear_start=0.0015, linear_end=0.0155, timesteps=1000, scale_factor=0.3,
                    unet_config=dict(target='ldm.modules.diffusionmodules.openaimodel.UNetModel',
                                     params=unet_params),
                    first_stage_config=dict(
                        target='ldm.models.autoencoder.AutoencoderKL',
                        params=dict(embed_dim=4, ddconfig=dict(
                            double_z=True, z_channels=4, resolution=16, in_channels=3, out_ch=3,
                            ch=32, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[],
                            dropout=0.0))))))


def tiny_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                         block_out_channels=(32, 64), layers_per_block=1,
                         down_block_types=('DownEncoderBlock2D', ) * 2,
                         up_block_types=('UpDecoderBlock2D', ) * 2)


def randomised(model):
    torch.manual_seed(1)
    for param in model.parameters():  # zero-initialised output layers would hide a wrong map
        torch.nn.init.normal_(param, std=0.2)
    return model.eval()


def write_ldm(tmp_path, unet, unet_params, extra=None, legacy_head_dim=None):
    vae = randomised(tiny_vae())
    state_dict = {**diffusers_unet_to_ldm(unet, legacy_head_dim), **diffusers_vae_to_ldm(vae),
                  **(extra or {})}
    torch.save({'state_dict': state_dict, 'global_step': 1}, tmp_path / 'model.ckpt')
    (tmp_path / 'config.yaml').write_text(yaml.safe_dump(ldm_yaml(unet_params)))
    return vae


def check_vae(vae, out_dir):
    from diffusers import AutoencoderKL
    converted = AutoencoderKL.from_pretrained(str(out_dir / 'vae')).eval()
    assert converted.config.scaling_factor == pytest.approx(0.3)
    x, z = torch.randn(2, 3, 16, 16), torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(converted.encode(x).latent_dist.mean,
                                   vae.encode(x).latent_dist.mean)
        torch.testing.assert_close(converted.decode(z).sample, vae.decode(z).sample)


def test_ldm_with_attention_blocks_to_unet2d_and_vae(tmp_path):
    """An unconditional LDM (LSUN-Churches style: AttentionBlock, scale-shift norm)."""
    from diffusers import DDPMScheduler, UNet2DModel
    converter = load_converter('ldm_to_diffusers')
    unet = randomised(UNet2DModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=1, down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
        up_block_types=('AttnUpBlock2D', 'UpBlock2D'), attention_head_dim=16,
        resnet_time_scale_shift='scale_shift', attn_norm_num_groups=32))
    params = dict(image_size=8, in_channels=4, out_channels=4, model_channels=32,
                  attention_resolutions=[2], num_res_blocks=1, channel_mult=[1, 2],
                  num_head_channels=16, use_scale_shift_norm=True)
    vae = write_ldm(tmp_path, unet, params, legacy_head_dim=16)
    out = tmp_path / 'out'
    converter.main([str(tmp_path / 'model.ckpt'), str(tmp_path / 'config.yaml'), str(out)])

    converted = UNet2DModel.from_pretrained(str(out / 'unet')).eval()
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([3, 700])
    with torch.no_grad():
        torch.testing.assert_close(converted(x, t).sample, unet(x, t).sample)
    check_vae(vae, out)
    scheduler = DDPMScheduler.from_pretrained(str(out / 'scheduler'))
    # LDM's 'linear' schedule: linear in sqrt(beta).
    assert float(scheduler.betas[0]) == pytest.approx(0.0015)
    assert float(scheduler.betas[-1]) == pytest.approx(0.0155)
    assert float(scheduler.betas[500].sqrt()) == pytest.approx(
        0.0015**0.5 + 500 / 999 * (0.0155**0.5 - 0.0015**0.5))


def test_class_conditional_ldm_to_unet2d_condition(tmp_path):
    """A class-conditional LDM (cin256 style: spatial transformers cross-attending to a
    ClassEmbedder token; heads given as num_head_channels)."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file
    converter = load_converter('ldm_to_diffusers')
    unet = randomised(UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=1, down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
        up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'), cross_attention_dim=16,
        attention_head_dim=(2, 4)))  # heads per level: 32 / 16 and 64 / 16
    params = dict(image_size=8, in_channels=4, out_channels=4, model_channels=32,
                  attention_resolutions=[2], num_res_blocks=1, channel_mult=[1, 2],
                  num_head_channels=16, use_spatial_transformer=True, transformer_depth=1,
                  context_dim=16)
    table = torch.randn(11, 16)
    vae = write_ldm(tmp_path, unet, params, extra={'cond_stage_model.embedding.weight': table})
    out = tmp_path / 'out'
    converter.main([str(tmp_path / 'model.ckpt'), str(tmp_path / 'config.yaml'), str(out)])

    converted = UNet2DConditionModel.from_pretrained(str(out / 'unet')).eval()
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([3, 700])
    context = table[torch.tensor([[2], [7]])]  # one class token each
    with torch.no_grad():
        torch.testing.assert_close(converted(x, t, encoder_hidden_states=context).sample,
                                   unet(x, t, encoder_hidden_states=context).sample)
    check_vae(vae, out)
    torch.testing.assert_close(load_file(str(out / 'class_embedding.safetensors'))
                               ['embedding.weight'], table)


def test_vq_first_stage_is_refused(tmp_path):
    converter = load_converter('ldm_to_diffusers')
    config = ldm_yaml({})
    config['model']['params']['first_stage_config']['target'] = 'ldm.models.autoencoder.VQModel'
    path = tmp_path / 'vq.yaml'
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match='not an AutoencoderKL'):
        converter.read_original_config(str(path))

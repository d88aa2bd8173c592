"""Tiny checkpoints in latent-diffusion's own key layout, written by hand from its modules
(ldm/modules/diffusionmodules/openaimodel.py ``UNetModel``; ldm/modules/diffusionmodules/model.py
``Encoder`` / ``Decoder``; ldm/models/autoencoder.py ``AutoencoderKL`` / ``VQModel``;
ldm/modules/encoders/modules.py ``ClassEmbedder``): every
parameter name and shape those modules create, for the converter tests and for the paper-config
tests that build a model from a converted folder."""
import re

import torch
import yaml

def random_state(layout, seed=0, std=0.2):
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=generator) * std for k, shape in layout.items()}


# -- latent-diffusion: the UNet (openaimodel.py) ------------------------------------------------

def resblock_layout(prefix, cin, cout, emb, scale_shift):
    layout = {prefix + 'in_layers.0.weight': (cin, ), prefix + 'in_layers.0.bias': (cin, ),
              prefix + 'in_layers.2.weight': (cout, cin, 3, 3),
              prefix + 'in_layers.2.bias': (cout, ),
              prefix + 'emb_layers.1.weight': ((2 if scale_shift else 1) * cout, emb),
              prefix + 'emb_layers.1.bias': ((2 if scale_shift else 1) * cout, ),
              prefix + 'out_layers.0.weight': (cout, ), prefix + 'out_layers.0.bias': (cout, ),
              prefix + 'out_layers.3.weight': (cout, cout, 3, 3),
              prefix + 'out_layers.3.bias': (cout, )}
    if cin != cout:
        layout.update({prefix + 'skip_connection.weight': (cout, cin, 1, 1),
                       prefix + 'skip_connection.bias': (cout, )})
    return layout


def attention_block_layout(prefix, channels):
    return {prefix + 'norm.weight': (channels, ), prefix + 'norm.bias': (channels, ),
            prefix + 'qkv.weight': (3 * channels, channels, 1),
            prefix + 'qkv.bias': (3 * channels, ),
            prefix + 'proj_out.weight': (channels, channels, 1),
            prefix + 'proj_out.bias': (channels, )}


def spatial_transformer_layout(prefix, channels, context_dim):
    inner = channels  # heads x head channels = the block's width in LDM's UNet
    b = prefix + 'transformer_blocks.0.'
    layout = {prefix + 'norm.weight': (channels, ), prefix + 'norm.bias': (channels, ),
              prefix + 'proj_in.weight': (inner, channels, 1, 1),
              prefix + 'proj_in.bias': (inner, ),
              prefix + 'proj_out.weight': (channels, inner, 1, 1),
              prefix + 'proj_out.bias': (channels, ),
              b + 'ff.net.0.proj.weight': (8 * inner, inner),
              b + 'ff.net.0.proj.bias': (8 * inner, ),
              b + 'ff.net.2.weight': (inner, 4 * inner), b + 'ff.net.2.bias': (inner, )}
    for attn, kv in (('attn1', inner), ('attn2', context_dim)):
        layout.update({f'{b}{attn}.to_q.weight': (inner, inner),
                       f'{b}{attn}.to_k.weight': (inner, kv),
                       f'{b}{attn}.to_v.weight': (inner, kv),
                       f'{b}{attn}.to_out.0.weight': (inner, inner),
                       f'{b}{attn}.to_out.0.bias': (inner, )})
    for n in ('norm1', 'norm2', 'norm3'):
        layout.update({f'{b}{n}.weight': (inner, ), f'{b}{n}.bias': (inner, )})
    return layout


def openaimodel_layout(p):
    """UNetModel(**p)'s parameters under model.diffusion_model., built as its __init__ builds
    input_blocks / middle_block / output_blocks."""
    mc, mults, per_level = p['model_channels'], p['channel_mult'], p['num_res_blocks']
    emb, scale_shift = 4 * mc, p.get('use_scale_shift_norm', False)
    updown = p.get('resblock_updown', False)

    def attention(prefix, ch):
        if p.get('use_spatial_transformer'):
            return spatial_transformer_layout(prefix, ch, p['context_dim'])
        return attention_block_layout(prefix, ch)

    layout = {'time_embed.0.weight': (emb, mc), 'time_embed.0.bias': (emb, ),
              'time_embed.2.weight': (emb, emb), 'time_embed.2.bias': (emb, ),
              'input_blocks.0.0.weight': (mc, p['in_channels'], 3, 3),
              'input_blocks.0.0.bias': (mc, )}
    if p.get('num_classes'):
        layout['label_emb.weight'] = (p['num_classes'], emb)
    chans, ch, ds, index = [mc], mc, 1, 1
    for level, mult in enumerate(mults):
        for _ in range(per_level):
            layout.update(resblock_layout(f'input_blocks.{index}.0.', ch, mult * mc, emb,
                                          scale_shift))
            ch = mult * mc
            if ds in p['attention_resolutions']:
                layout.update(attention(f'input_blocks.{index}.1.', ch))
            chans.append(ch)
            index += 1
        if level != len(mults) - 1:
            if updown:
                layout.update(resblock_layout(f'input_blocks.{index}.0.', ch, ch, emb,
                                              scale_shift))
            else:
                layout.update({f'input_blocks.{index}.0.op.weight': (ch, ch, 3, 3),
                               f'input_blocks.{index}.0.op.bias': (ch, )})
            chans.append(ch)
            index += 1
            ds *= 2
    layout.update(resblock_layout('middle_block.0.', ch, ch, emb, scale_shift))
    layout.update(attention('middle_block.1.', ch))
    layout.update(resblock_layout('middle_block.2.', ch, ch, emb, scale_shift))
    index = 0
    for level, mult in list(enumerate(mults))[::-1]:
        for i in range(per_level + 1):
            layout.update(resblock_layout(f'output_blocks.{index}.0.', ch + chans.pop(),
                                          mc * mult, emb, scale_shift))
            ch, sub = mc * mult, 1
            if ds in p['attention_resolutions']:
                layout.update(attention(f'output_blocks.{index}.1.', ch))
                sub = 2
            if level and i == per_level:
                if updown:
                    layout.update(resblock_layout(f'output_blocks.{index}.{sub}.', ch, ch, emb,
                                                  scale_shift))
                else:
                    layout.update({f'output_blocks.{index}.{sub}.conv.weight': (ch, ch, 3, 3),
                                   f'output_blocks.{index}.{sub}.conv.bias': (ch, )})
                ds //= 2
            index += 1
    layout.update({'out.0.weight': (ch, ), 'out.0.bias': (ch, ),
                   'out.2.weight': (p['out_channels'], ch, 3, 3),
                   'out.2.bias': (p['out_channels'], )})
    return {f'model.diffusion_model.{k}': v for k, v in layout.items()}


# -- latent-diffusion: the first stages (model.py, autoencoder.py) ------------------------------

def coder_resblock(prefix, cin, cout):
    layout = {prefix + 'norm1.weight': (cin, ), prefix + 'norm1.bias': (cin, ),
              prefix + 'conv1.weight': (cout, cin, 3, 3), prefix + 'conv1.bias': (cout, ),
              prefix + 'norm2.weight': (cout, ), prefix + 'norm2.bias': (cout, ),
              prefix + 'conv2.weight': (cout, cout, 3, 3), prefix + 'conv2.bias': (cout, )}
    if cin != cout:
        layout.update({prefix + 'nin_shortcut.weight': (cout, cin, 1, 1),
                       prefix + 'nin_shortcut.bias': (cout, )})
    return layout


def attn_block(prefix, ch):
    layout = {prefix + 'norm.weight': (ch, ), prefix + 'norm.bias': (ch, )}
    for name in ('q', 'k', 'v', 'proj_out'):
        layout.update({f'{prefix}{name}.weight': (ch, ch, 1, 1), f'{prefix}{name}.bias': (ch, )})
    return layout


def first_stage_layout(dd, embed_dim, n_embed=None):
    """Encoder + Decoder(**ddconfig), quant_conv, post_quant_conv (+ quantize.embedding of a
    VQModel) under first_stage_model."""
    ch, mults, blocks, z = dd['ch'], dd['ch_mult'], dd['num_res_blocks'], dd['z_channels']
    layout, res = {'encoder.conv_in.weight': (ch, dd['in_channels'], 3, 3),
                   'encoder.conv_in.bias': (ch, )}, dd['resolution']
    cin = ch
    for i, mult in enumerate(mults):
        for j in range(blocks):
            layout.update(coder_resblock(f'encoder.down.{i}.block.{j}.', cin, ch * mult))
            cin = ch * mult
            if res in dd['attn_resolutions']:
                layout.update(attn_block(f'encoder.down.{i}.attn.{j}.', cin))
        if i != len(mults) - 1:
            layout.update({f'encoder.down.{i}.downsample.conv.weight': (cin, cin, 3, 3),
                           f'encoder.down.{i}.downsample.conv.bias': (cin, )})
            res //= 2
    for coder in ('encoder', 'decoder'):
        layout.update(coder_resblock(f'{coder}.mid.block_1.', cin, cin))
        layout.update(attn_block(f'{coder}.mid.attn_1.', cin))
        layout.update(coder_resblock(f'{coder}.mid.block_2.', cin, cin))
    z_out = 2 * z if dd['double_z'] else z
    layout.update({'encoder.norm_out.weight': (cin, ), 'encoder.norm_out.bias': (cin, ),
                   'encoder.conv_out.weight': (z_out, cin, 3, 3),
                   'encoder.conv_out.bias': (z_out, ),
                   'decoder.conv_in.weight': (cin, z, 3, 3), 'decoder.conv_in.bias': (cin, )})
    for i, mult in reversed(list(enumerate(mults))):
        for j in range(blocks + 1):
            layout.update(coder_resblock(f'decoder.up.{i}.block.{j}.', cin, ch * mult))
            cin = ch * mult
            if res in dd['attn_resolutions']:
                layout.update(attn_block(f'decoder.up.{i}.attn.{j}.', cin))
        if i != 0:
            layout.update({f'decoder.up.{i}.upsample.conv.weight': (cin, cin, 3, 3),
                           f'decoder.up.{i}.upsample.conv.bias': (cin, )})
            res *= 2
    layout.update({'decoder.norm_out.weight': (cin, ), 'decoder.norm_out.bias': (cin, ),
                   'decoder.conv_out.weight': (dd['out_ch'], cin, 3, 3),
                   'decoder.conv_out.bias': (dd['out_ch'], )})
    q = 2 * embed_dim if dd['double_z'] else embed_dim
    layout.update({'quant_conv.weight': (q, z_out, 1, 1), 'quant_conv.bias': (q, ),
                   'post_quant_conv.weight': (z, embed_dim, 1, 1), 'post_quant_conv.bias': (z, )})
    if n_embed:
        layout['quantize.embedding.weight'] = (n_embed, embed_dim)
    return {f'first_stage_model.{k}': v for k, v in layout.items()}


# The tiny models' YAMLs, shaped as the released ones they stand for.
LSUN_UNET = dict(image_size=8, in_channels=4, out_channels=4, model_channels=32,
                 attention_resolutions=[1, 2], num_res_blocks=1, channel_mult=[1, 2, 2],
                 num_heads=2, use_scale_shift_norm=True, resblock_updown=True)
CIN_UNET = dict(image_size=8, in_channels=4, out_channels=4, model_channels=32,
                attention_resolutions=[2, 1], num_res_blocks=1, channel_mult=[1, 2],
                num_head_channels=16, use_spatial_transformer=True, transformer_depth=1,
                context_dim=16)
KL_DD = dict(double_z=True, z_channels=4, resolution=16, in_channels=3, out_ch=3, ch=32,
             ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[], dropout=0.0)
VQ_DD = dict(double_z=False, z_channels=4, resolution=16, in_channels=3, out_ch=3, ch=32,
             ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8], dropout=0.0)


def ldm_yaml(unet, first_stage, cond_stage=None, **params):
    kl = first_stage == 'kl'
    stage = dict(target='ldm.models.autoencoder.' + ('AutoencoderKL' if kl else
                                                    'VQModelInterface'),
                 params=dict(embed_dim=4, ddconfig=KL_DD if kl else VQ_DD,
                             lossconfig=dict(target='torch.nn.Identity'),
                             **({} if kl else dict(n_embed=32))))
    return dict(model=dict(target='ldm.models.diffusion.ddpm.LatentDiffusion', params=dict(
        linear_start=0.0015, linear_end=0.0155, timesteps=1000, **params,
        unet_config=dict(target='ldm.modules.diffusionmodules.openaimodel.UNetModel',
                         params=unet),
        first_stage_config=stage, cond_stage_config=cond_stage or '__is_unconditional__')))


def write_ldm(tmp_path, config, state):
    torch.save({'state_dict': state, 'global_step': 1}, tmp_path / 'model.ckpt')
    (tmp_path / 'config.yaml').write_text(yaml.safe_dump(config))
    return str(tmp_path / 'model.ckpt'), str(tmp_path / 'config.yaml')


# A tiny diffusers model mapped back to the upstream names (for the numerical round trip).

RESNET_NAMES = [('norm1', 'in_layers.0'), ('conv1', 'in_layers.2'),
                ('time_emb_proj', 'emb_layers.1'), ('norm2', 'out_layers.0'),
                ('conv2', 'out_layers.3'), ('conv_shortcut', 'skip_connection')]


def back_to_upstream(converter, p, diffusers_state):
    """Inverse of the converter's renaming, from its block table, for the numerical check; the
    fused qkv is rebuilt in the legacy per-head order."""
    blocks = converter.unet_blocks(p)
    upstream = {}
    for key, value in diffusers_state.items():
        old, new, kind, ch = next(b for b in sorted(blocks, key=lambda b: -len(b[1]))
                                  if key.startswith(b[1]))
        rest = key[len(new):]
        if kind == 'resnet':
            for n, o in RESNET_NAMES:
                if rest.startswith(n + '.'):
                    rest = o + rest[len(n):]
        elif kind == 'attention':
            if rest.startswith('to_k.') or rest.startswith('to_v.'):
                continue
            if rest.startswith('to_q.'):
                heads = converter.attention_heads(p, ch)
                parts = [diffusers_state[f'{new}to_{x}.{rest[5:]}'] for x in 'qkv']
                qkv = torch.stack([t.reshape(heads, -1, *t.shape[1:]) for t in parts], 1)
                qkv = qkv.reshape(-1, *parts[0].shape[1:])
                qkv = qkv[..., None] if qkv.dim() == 2 else qkv
                upstream[f'model.diffusion_model.{old}qkv.{rest[5:]}'] = qkv
                continue
            if rest.startswith('to_out.0.'):
                rest, value = 'proj_out.' + rest[9:], value[..., None] if value.dim() == 2 \
                    else value
            else:
                rest = rest.replace('group_norm.', 'norm.')
        upstream[f'model.diffusion_model.{old}{rest}'] = value.clone()
    return upstream


def back_to_upstream_first_stage(vae):
    levels = len(vae.config.block_out_channels)
    attention = [('group_norm', 'norm'), ('to_q', 'q'), ('to_k', 'k'), ('to_v', 'v'),
                 ('to_out.0', 'proj_out')]
    out = {}
    for key, value in vae.state_dict().items():
        coder, _, rest = key.partition('.')
        if coder in ('encoder', 'decoder'):
            rest = rest.replace('conv_norm_out', 'norm_out')
            m = re.match(r'(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)'
                         r'\.(\d+)\.(.*)', rest)
            mid = re.match(r'mid_block\.(resnets|attentions)\.(\d+)\.(.*)', rest)
            if m:
                side, b, kind, j, tail = m.groups()
                level = int(b) if side == 'down' else levels - 1 - int(b)
                if kind == 'resnets':
                    rest = f'{side}.{level}.block.{j}.' + tail.replace('conv_shortcut',
                                                                      'nin_shortcut')
                elif kind == 'attentions':
                    for n, o in attention:
                        tail = tail.replace(n + '.', o + '.') if tail.startswith(n) else tail
                    value = value[..., None, None] if value.dim() == 2 else value
                    rest = f'{side}.{level}.attn.{j}.{tail}'
                else:
                    rest = f'{side}.{level}.{side}sample.{tail}'
            elif mid and mid.group(1) == 'resnets':
                rest = f'mid.block_{int(mid.group(2)) + 1}.{mid.group(3)}'
            elif mid:
                tail = mid.group(3)
                for n, o in attention:
                    tail = tail.replace(n + '.', o + '.') if tail.startswith(n) else tail
                value = value[..., None, None] if value.dim() == 2 else value
                rest = f'mid.attn_1.{tail}'
            key = f'{coder}.{rest}'
        out[f'first_stage_model.{key}'] = value.clone()
    return out


def randomised(model, seed=1):
    torch.manual_seed(seed)
    for param in model.parameters():  # zero-initialised output layers would hide a wrong map
        torch.nn.init.normal_(param, std=0.2)
    return model.eval()


def upstream_ldm(converter, config, seed=1, extra=None):
    """(upstream state dict, the diffusers UNet and first stage it holds) of a tiny LDM
    ``config``: random diffusers models of the converter's configs mapped back to the upstream
    names (whose key sets tests/test_model_converters.py checks against the layouts above)."""
    import diffusers

    from genrep.diffusion.denoisers import set_attention_heads
    name, unet_config, heads = converter.unet_diffusers_config(config)
    unet = randomised(getattr(diffusers, name)(**unet_config), seed)
    if heads is not None:
        set_attention_heads(unet, heads)
    stage_name, stage_config = converter.first_stage_diffusers_config(config, 1.0)
    stage = randomised(getattr(diffusers, stage_name)(**stage_config), seed + 1)
    unet_params = config['model']['params']['unet_config']['params']
    state = {**back_to_upstream(converter, unet_params, unet.state_dict()),
             **back_to_upstream_first_stage(stage), **(extra or {})}
    return state, unet, stage

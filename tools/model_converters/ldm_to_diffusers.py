"""Convert a CompVis latent-diffusion checkpoint (``.ckpt`` + the YAML it was trained with) to the
diffusers folders the paper configs read:

    python tools/model_converters/ldm_to_diffusers.py model.ckpt config.yaml OUT_DIR [--no-ema]

    OUT_DIR/unet        UNet2DConditionModel (spatial transformers: cin-ldm-vq-f8, cin256-v2) or
                        UNet2DModel (plain attention blocks: LSUN-Churches, CelebA-HQ)
    OUT_DIR/vae         AutoencoderKL, for a KL first stage (ldm.models.autoencoder.AutoencoderKL)
    OUT_DIR/vqvae       VQModel, for a VQ first stage (VQModel / VQModelInterface)
    OUT_DIR/scheduler   DDPMScheduler of the YAML's beta schedule
    OUT_DIR/class_embedding.safetensors
                        the ClassEmbedder table (``embedding.weight``, [n_classes, embed_dim]) of a
                        class-conditional LDM; UNet2DConditionDenoiser(class_embedding=...) reads it
    OUT_DIR/ldm_conversion.json
                        what the configs must agree with: the latent scale, attention heads, the
                        class table's shape, the source files

The first stage's ``scaling_factor`` (in its config.json) is the LDM's ``scale_factor``: the buffer
stored in the checkpoint when the model was trained with ``scale_by_std`` (its value is computed
from the first batch's latents, so only the checkpoint knows it), else the YAML's (default 1).

The key mapping is written here from the upstream modules' own names (ldm/modules/
diffusionmodules/openaimodel.py: ``input_blocks`` / ``middle_block`` / ``output_blocks`` of
``ResBlock``, ``AttentionBlock`` or ``SpatialTransformer``, ``Downsample`` / ``Upsample`` or, with
``resblock_updown``, resampling ResBlocks; ldm/modules/diffusionmodules/model.py: ``Encoder`` /
``Decoder`` with ``down.i.block.j``, ``attn``, ``mid.block_1`` ...). Every checkpoint key under
``model.diffusion_model.``, ``first_stage_model.`` and ``cond_stage_model.`` must be used, and
every diffusers weight filled (``load_state_dict(strict=True)``): a layout this mapping does not
know fails naming the key.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401,E402  (applies genrep.compat before diffusers imports torchvision)
import torch  # noqa: E402
import yaml  # noqa: E402
from torch import Tensor  # noqa: E402

UNET_PREFIX = 'model.diffusion_model.'
FIRST_STAGE_PREFIX = 'first_stage_model.'
CLASS_EMBEDDING_KEY = 'cond_stage_model.embedding.weight'
CLASS_EMBEDDING_FILE = 'class_embedding.safetensors'
CONVERSION_FILE = 'ldm_conversion.json'


# -- reading ---------------------------------------------------------------------------------

def read_ldm_checkpoint(path: str) -> Dict[str, Tensor]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'LDM checkpoint {path} not found')
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    return checkpoint.get('state_dict', checkpoint)


def read_original_config(path: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(f'LDM config {path} not found (the YAML the checkpoint was '
                                'trained with: the architecture is not in the .ckpt)')
    with open(path) as f:
        config = yaml.safe_load(f)
    first_stage_kind(config, path)
    return config


def ldm_params(original_config: dict) -> dict:
    return original_config['model']['params']


def unet_params(original_config: dict) -> dict:
    return ldm_params(original_config)['unet_config']['params']


def first_stage_kind(original_config: dict, source: str = 'the LDM config') -> str:
    """'kl' or 'vq' from ``first_stage_config.target``."""
    target = ldm_params(original_config)['first_stage_config']['target']
    name = target.rsplit('.', 1)[-1]
    if name == 'AutoencoderKL':
        return 'kl'
    if name in ('VQModel', 'VQModelInterface'):
        return 'vq'
    raise ValueError(f'{source}: first_stage_config.target {target} is neither an AutoencoderKL '
                     'nor a VQModel / VQModelInterface')


def unet_weights(checkpoint: Dict[str, Tensor], use_ema: bool) -> Dict[str, Tensor]:
    """The UNet's weights without ``model.diffusion_model.``; with ``use_ema`` the EMA copy.

    LDM's ``LitEma`` keeps the EMA of parameter ``diffusion_model.<name>`` as the buffer
    ``model_ema.<name without dots>`` (a buffer name may not contain a dot)."""
    weights = {k[len(UNET_PREFIX):]: v for k, v in checkpoint.items() if k.startswith(UNET_PREFIX)}
    if not weights:
        raise KeyError(f'no {UNET_PREFIX}* key: not a latent-diffusion checkpoint')
    if not use_ema or not any(k.startswith('model_ema.') for k in checkpoint):
        return weights
    ema = {}
    for name in weights:
        key = 'model_ema.' + ('diffusion_model.' + name).replace('.', '')
        if key not in checkpoint:
            raise KeyError(f'EMA weights: {key} (of {UNET_PREFIX}{name}) missing; convert the '
                           'trained weights with --no-ema')
        ema[name] = checkpoint[key]
    return ema


def latent_scale_factor(checkpoint: Dict[str, Tensor], original_config: dict) -> float:
    """LDM's ``scale_factor``: the checkpoint's buffer (``scale_by_std``), else the YAML's."""
    if 'scale_factor' in checkpoint:
        return float(checkpoint['scale_factor'])
    params = ldm_params(original_config)
    if params.get('scale_by_std'):
        raise KeyError('the YAML sets scale_by_std but the checkpoint stores no scale_factor')
    return float(params.get('scale_factor', 1.0))


# -- the UNet --------------------------------------------------------------------------------

RESBLOCK_NAMES = (('in_layers.0.', 'norm1.'), ('in_layers.2.', 'conv1.'),
                  ('emb_layers.1.', 'time_emb_proj.'), ('out_layers.0.', 'norm2.'),
                  ('out_layers.3.', 'conv2.'), ('skip_connection.', 'conv_shortcut.'))


def attention_heads(p: dict, channels: int) -> int:
    """Heads of an attention block of width ``channels`` (openaimodel: num_head_channels wins
    over num_heads)."""
    head_channels = p.get('num_head_channels', -1)
    return channels // head_channels if head_channels not in (-1, None) else p['num_heads']


def unet_blocks(p: dict) -> List[Tuple[str, str, str, int]]:
    """(upstream prefix, diffusers prefix, kind, channels) of every block of openaimodel's UNetModel
    built from the YAML's ``unet_config.params`` ``p``; kind: 'plain' (renamed only), 'resnet',
    'attention' (AttentionBlock), 'transformer' (SpatialTransformer)."""
    levels, per_level = len(p['channel_mult']), p['num_res_blocks']
    attention_at = set(p['attention_resolutions'])
    updown = bool(p.get('resblock_updown', False))
    attention = 'transformer' if p.get('use_spatial_transformer') else 'attention'
    width = [p['model_channels'] * m for m in p['channel_mult']]
    blocks = [('time_embed.0.', 'time_embedding.linear_1.', 'plain', 0),
              ('time_embed.2.', 'time_embedding.linear_2.', 'plain', 0),
              ('input_blocks.0.0.', 'conv_in.', 'plain', 0),
              ('out.0.', 'conv_norm_out.', 'plain', 0), ('out.2.', 'conv_out.', 'plain', 0)]
    if p.get('num_classes') is not None:
        blocks.append(('label_emb.', 'class_embedding.', 'plain', 0))
    index, ds = 1, 1
    for level in range(levels):
        for j in range(per_level):
            blocks.append((f'input_blocks.{index}.0.', f'down_blocks.{level}.resnets.{j}.',
                           'resnet', width[level]))
            if ds in attention_at:
                blocks.append((f'input_blocks.{index}.1.', f'down_blocks.{level}.attentions.{j}.',
                               attention, width[level]))
            index += 1
        if level != levels - 1:
            down = f'down_blocks.{level}.downsamplers.0.'
            blocks.append((f'input_blocks.{index}.0.', down, 'resnet', width[level]) if updown
                          else (f'input_blocks.{index}.0.op.', down + 'conv.', 'plain', 0))
            index += 1
            ds *= 2
    blocks += [('middle_block.0.', 'mid_block.resnets.0.', 'resnet', width[-1]),
               ('middle_block.1.', 'mid_block.attentions.0.', attention, width[-1]),
               ('middle_block.2.', 'mid_block.resnets.1.', 'resnet', width[-1])]
    index = 0
    for b, level in enumerate(reversed(range(levels))):
        for j in range(per_level + 1):
            blocks.append((f'output_blocks.{index}.0.', f'up_blocks.{b}.resnets.{j}.', 'resnet',
                           width[level]))
            sub = 1
            if ds in attention_at:
                blocks.append((f'output_blocks.{index}.1.', f'up_blocks.{b}.attentions.{j}.',
                               attention, width[level]))
                sub = 2
            if level and j == per_level:
                up = f'up_blocks.{b}.upsamplers.0.'
                blocks.append((f'output_blocks.{index}.{sub}.', up, 'resnet', width[level])
                              if updown else
                              (f'output_blocks.{index}.{sub}.conv.', up + 'conv.', 'plain', 0))
                ds //= 2
            index += 1
    return blocks


def split_qkv(qkv: Tensor, heads: int) -> Tuple[Tensor, Tensor, Tensor]:
    """AttentionBlock's fused ``qkv`` (Conv1d, legacy order: the 3C rows grouped by head as
    [q_h, k_h, v_h]) -> q, k, v as Linear weights (or biases)."""
    channels = qkv.shape[0] // 3
    grouped = qkv.reshape(heads, 3, channels // heads, *qkv.shape[1:])
    parts = [grouped[:, i].reshape(channels, *qkv.shape[1:]) for i in range(3)]
    return tuple(t.flatten(1) if t.dim() > 1 else t for t in parts)


def convert_unet_weights(weights: Dict[str, Tensor], p: dict) -> Dict[str, Tensor]:
    """openaimodel UNetModel state dict (without ``model.diffusion_model.``) -> diffusers names."""
    blocks = sorted(unet_blocks(p), key=lambda b: -len(b[0]))  # longest prefix first
    new = {}
    for key, value in weights.items():
        match = next((b for b in blocks if key.startswith(b[0])), None)
        if match is None:
            raise KeyError(f'{UNET_PREFIX}{key}: no block of the YAML\'s UNet holds it (check '
                           'channel_mult, num_res_blocks, attention_resolutions, resblock_updown)')
        old, prefix, kind, channels = match
        rest = key[len(old):]
        if kind == 'resnet':
            rest = next((n + rest[len(o):] for o, n in RESBLOCK_NAMES if rest.startswith(o)), None)
            if rest is None:
                raise KeyError(f'{UNET_PREFIX}{key}: not a ResBlock weight')
        elif kind == 'attention':
            if rest.startswith('qkv.'):
                for name, part in zip(('to_q.', 'to_k.', 'to_v.'),
                                      split_qkv(value, attention_heads(p, channels))):
                    new[prefix + name + rest[4:]] = part
                continue
            if rest.startswith('norm.'):
                rest = 'group_norm.' + rest[5:]
            elif rest.startswith('proj_out.'):
                rest, value = 'to_out.0.' + rest[9:], value.flatten(1) if value.dim() > 1 else value
            else:
                raise KeyError(f'{UNET_PREFIX}{key}: not an AttentionBlock weight')
        new[prefix + rest] = value
    return new


def unet_diffusers_config(original_config: dict) -> Tuple[str, dict, Optional[int]]:
    """(diffusers class name, its config, heads to impose on every attention layer or None).

    UNet2DModel fixes the head *width* (``attention_head_dim``) for all levels, where openaimodel
    with ``num_heads`` fixes the head *count*; when the widths differ per level, the count is
    returned for ``UNet2DDenoiser(num_attention_heads=...)`` to set after loading."""
    p = unet_params(original_config)
    width = [p['model_channels'] * m for m in p['channel_mult']]
    attention = [2**i in set(p['attention_resolutions']) for i in range(len(width))]
    updown = bool(p.get('resblock_updown', False))
    common = dict(sample_size=p['image_size'], in_channels=p['in_channels'],
                  out_channels=p['out_channels'], block_out_channels=width,
                  layers_per_block=p['num_res_blocks'])
    if p.get('use_spatial_transformer'):
        if updown:
            raise ValueError('resblock_updown with spatial transformers has no '
                             'UNet2DConditionModel equivalent')
        config = dict(common,
                      down_block_types=['CrossAttnDownBlock2D' if a else 'DownBlock2D'
                                        for a in attention],
                      up_block_types=['CrossAttnUpBlock2D' if a else 'UpBlock2D'
                                      for a in reversed(attention)],
                      # diffusers' attention_head_dim of this class is the head COUNT per level
                      attention_head_dim=[attention_heads(p, c) for c in width],
                      cross_attention_dim=p['context_dim'],
                      transformer_layers_per_block=p.get('transformer_depth', 1),
                      use_linear_projection=bool(p.get('use_linear_in_transformer', False)))
        if p.get('num_classes') is not None:
            config['num_class_embeds'] = p['num_classes']
        return 'UNet2DConditionModel', config, None
    heads = {attention_heads(p, c) for c, a in zip(width, attention) if a}
    heads.add(attention_heads(p, width[-1]))  # the middle block's
    head_width = {c // attention_heads(p, c) for c, a in zip(width + [width[-1]],
                                                              attention + [True]) if a}
    down = ['AttnDownBlock2D' if a else ('ResnetDownsampleBlock2D' if updown else 'DownBlock2D')
            for a in attention]
    up = ['AttnUpBlock2D' if a else ('ResnetUpsampleBlock2D' if updown else 'UpBlock2D')
          for a in reversed(attention)]
    config = dict(common, down_block_types=down, up_block_types=up,
                  attention_head_dim=min(head_width),
                  resnet_time_scale_shift='scale_shift' if p.get('use_scale_shift_norm')
                  else 'default',
                  # AttentionBlock normalises with GroupNorm(32) always; UNet2DModel's middle
                  # attention drops its norm under scale-shift unless the groups are given.
                  attn_norm_num_groups=32)
    if updown:
        config.update(downsample_type='resnet', upsample_type='resnet')
    if p.get('num_classes') is not None:
        config['num_class_embeds'] = p['num_classes']
    impose = None
    if len(head_width) > 1:
        if len(heads) > 1:
            raise ValueError('attention blocks with both varying head counts and head widths '
                             'have no UNet2DModel equivalent')
        impose = heads.pop()
    return 'UNet2DModel', config, impose


def convert_unet(checkpoint: Dict[str, Tensor], original_config: dict, use_ema: bool = True):
    """(diffusers UNet with the checkpoint's weights, heads imposed or None)."""
    import diffusers

    from genrep.diffusion.denoisers import set_attention_heads
    name, config, heads = unet_diffusers_config(original_config)
    model = getattr(diffusers, name)(**config)
    weights = convert_unet_weights(unet_weights(checkpoint, use_ema),
                                   unet_params(original_config))
    model.load_state_dict(weights, strict=True)
    if heads is not None:
        set_attention_heads(model, heads)
    return model, heads


# -- the first stage -------------------------------------------------------------------------

def first_stage_params(original_config: dict) -> dict:
    return ldm_params(original_config)['first_stage_config']['params']


def first_stage_diffusers_config(original_config: dict, scale: float) -> Tuple[str, dict]:
    """(AutoencoderKL or VQModel, config) of ldm's first stage; attention at a level
    (``attn_resolutions``) becomes an Attn{Down,Up}...Block2D."""
    kind = first_stage_kind(original_config)
    params = first_stage_params(original_config)
    dd = params['ddconfig']
    levels = len(dd['ch_mult'])
    attention = [dd['resolution'] // 2**i in set(dd.get('attn_resolutions', []))
                 for i in range(levels)]
    config = dict(in_channels=dd['in_channels'], out_channels=dd['out_ch'],
                  block_out_channels=[dd['ch'] * m for m in dd['ch_mult']],
                  layers_per_block=dd['num_res_blocks'], latent_channels=dd['z_channels'],
                  sample_size=dd['resolution'], scaling_factor=scale,
                  down_block_types=['AttnDownEncoderBlock2D' if a else 'DownEncoderBlock2D'
                                    for a in attention],
                  up_block_types=['AttnUpDecoderBlock2D' if a else 'UpDecoderBlock2D'
                                  for a in reversed(attention)])
    if kind == 'kl':
        if params['embed_dim'] != dd['z_channels']:
            raise ValueError(f"AutoencoderKL with embed_dim {params['embed_dim']} != z_channels "
                             f"{dd['z_channels']} has no diffusers equivalent")
        return 'AutoencoderKL', config
    return 'VQModel', dict(config, num_vq_embeddings=params['n_embed'],
                           vq_embed_dim=params['embed_dim'])


def convert_first_stage_weights(weights: Dict[str, Tensor], levels: int) -> Dict[str, Tensor]:
    """ldm's Encoder / Decoder (+ quant_conv, post_quant_conv, quantize.embedding) state dict,
    without ``first_stage_model.``, -> diffusers AutoencoderKL / VQModel names."""
    resnet = (('nin_shortcut.', 'conv_shortcut.'), )
    attention = (('norm.', 'group_norm.'), ('q.', 'to_q.'), ('k.', 'to_k.'), ('v.', 'to_v.'),
                 ('proj_out.', 'to_out.0.'))
    fixed = {'conv_in.': 'conv_in.', 'conv_out.': 'conv_out.', 'norm_out.': 'conv_norm_out.'}
    new = {}
    for key, value in weights.items():
        if key.startswith('loss.'):
            continue  # a standalone first stage's discriminator / LPIPS: not part of the model
        if key.split('.')[0] in ('quant_conv', 'post_quant_conv', 'quantize'):
            if key not in ('quantize.embedding.weight', ) and key.startswith('quantize.'):
                raise KeyError(f'{FIRST_STAGE_PREFIX}{key}: VectorQuantizer remapping (used '
                               'indices) has no diffusers equivalent')
            new[key] = value
            continue
        coder, _, rest = key.partition('.')
        if coder not in ('encoder', 'decoder'):
            raise KeyError(f'{FIRST_STAGE_PREFIX}{key}: not a first-stage weight')
        target = None
        for old, name in fixed.items():
            if rest.startswith(old):
                target = name + rest[len(old):]
        m = re.match(r'(down|up)\.(\d+)\.(block|attn|downsample|upsample)\.(.*)', rest)
        mid = re.match(r'mid\.(block_1|attn_1|block_2)\.(.*)', rest)
        if m:
            side, level, kind, tail = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            # Decoder.up[i] is level i, run deepest first; diffusers' up_blocks run in order.
            b = level if side == 'down' else levels - 1 - level
            if kind in ('downsample', 'upsample'):
                target = f'{side}_blocks.{b}.{side}samplers.0.{tail}'
            else:
                j, tail = tail.split('.', 1)
                names = resnet if kind == 'block' else attention
                tail = next((n + tail[len(o):] for o, n in names if tail.startswith(o)), tail)
                group = 'resnets' if kind == 'block' else 'attentions'
                target = f'{side}_blocks.{b}.{group}.{j}.{tail}'
                if kind == 'attn':
                    value = value.flatten(1) if value.dim() > 1 else value  # 1x1 conv -> linear
        elif mid:
            block, tail = mid.groups()
            if block == 'attn_1':
                tail = next((n + tail[len(o):] for o, n in attention if tail.startswith(o)), tail)
                value = value.flatten(1) if value.dim() > 1 else value
                target = f'mid_block.attentions.0.{tail}'
            else:
                tail = next((n + tail[len(o):] for o, n in resnet if tail.startswith(o)), tail)
                target = f'mid_block.resnets.{0 if block == "block_1" else 1}.{tail}'
        if target is None:
            raise KeyError(f'{FIRST_STAGE_PREFIX}{key}: not an Encoder / Decoder weight')
        new[f'{coder}.{target}'] = value
    return new


def convert_first_stage(checkpoint: Dict[str, Tensor], original_config: dict, scale: float):
    import diffusers
    name, config = first_stage_diffusers_config(original_config, scale)
    model = getattr(diffusers, name)(**config)
    weights = {k[len(FIRST_STAGE_PREFIX):]: v for k, v in checkpoint.items()
               if k.startswith(FIRST_STAGE_PREFIX)}
    if not weights:
        raise KeyError(f'no {FIRST_STAGE_PREFIX}* key in the checkpoint')
    model.load_state_dict(convert_first_stage_weights(weights, len(config['block_out_channels'])),
                          strict=True)
    return model


# -- the rest --------------------------------------------------------------------------------

def class_embedding(checkpoint: Dict[str, Tensor]) -> Optional[Tensor]:
    """ClassEmbedder's table [n_classes, embed_dim] (``cond_stage_model.embedding.weight``)."""
    extra = sorted(k for k in checkpoint
                   if k.startswith('cond_stage_model.') and k != CLASS_EMBEDDING_KEY)
    if extra:
        raise KeyError(f'{extra[0]}: only a ClassEmbedder conditioning stage converts (the '
                       'class table); text encoders are not converted here')
    return checkpoint.get(CLASS_EMBEDDING_KEY)


def ddpm_scheduler(original_config: dict):
    """LDM's 'linear' schedule is linear in sqrt(beta): diffusers' 'scaled_linear'."""
    from diffusers import DDPMScheduler
    p = ldm_params(original_config)
    return DDPMScheduler(num_train_timesteps=p.get('timesteps', 1000),
                         beta_start=p.get('linear_start', 0.0015),
                         beta_end=p.get('linear_end', 0.0195),
                         beta_schedule='scaled_linear', clip_sample=False)


def convert_ldm(checkpoint_path: str, config_path: str, out_dir: str, use_ema: bool = True
                ) -> dict:
    """Convert and save; returns what ``ldm_conversion.json`` records."""
    from safetensors.torch import save_file
    original_config = read_original_config(config_path)
    checkpoint = read_ldm_checkpoint(checkpoint_path)
    table = class_embedding(checkpoint)
    scale = latent_scale_factor(checkpoint, original_config)
    unet, heads = convert_unet(checkpoint, original_config, use_ema)
    first_stage = convert_first_stage(checkpoint, original_config, scale)
    stage_dir = 'vae' if first_stage_kind(original_config) == 'kl' else 'vqvae'
    unet.save_pretrained(osp.join(out_dir, 'unet'), safe_serialization=True)
    first_stage.save_pretrained(osp.join(out_dir, stage_dir), safe_serialization=True)
    ddpm_scheduler(original_config).save_pretrained(osp.join(out_dir, 'scheduler'))
    record = dict(source_checkpoint=osp.abspath(checkpoint_path),
                  source_config=osp.abspath(config_path), ema=use_ema,
                  unet=type(unet).__name__, first_stage=stage_dir, scaling_factor=scale,
                  num_attention_heads=heads,
                  class_embedding=None if table is None else list(table.shape))
    if table is not None:
        save_file({'embedding.weight': table.contiguous()},
                  osp.join(out_dir, CLASS_EMBEDDING_FILE))
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, CONVERSION_FILE), 'w') as f:
        json.dump(record, f, indent=2)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description='CompVis LDM .ckpt -> diffusers folders')
    parser.add_argument('checkpoint', help='LDM checkpoint (.ckpt)')
    parser.add_argument('config', help="the checkpoint's original YAML config")
    parser.add_argument('out_dir', help='folder to write unet/, vae/ or vqvae/, scheduler/ to')
    parser.add_argument('--no-ema', action='store_true',
                        help='convert the trained weights, not their EMA (model_ema.*)')
    args = parser.parse_args(argv)
    record = convert_ldm(args.checkpoint, args.config, args.out_dir, not args.no_ema)
    print(f"{args.checkpoint} -> {args.out_dir}: unet/ ({record['unet']}), "
          f"{record['first_stage']}/ (scaling_factor {record['scaling_factor']:.8g})"
          + (f", {CLASS_EMBEDDING_FILE} {record['class_embedding']}"
             if record['class_embedding'] else '')
          + (f"; the config's UNet2DDenoiser needs num_attention_heads="
             f"{record['num_attention_heads']}" if record['num_attention_heads'] else ''))


if __name__ == '__main__':
    main()

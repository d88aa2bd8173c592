"""Convert a CompVis latent diffusion checkpoint (``.ckpt`` + its original YAML config) to diffusers
directories (safetensors):

    python tools/model_converters/ldm_to_diffusers.py model.ckpt config.yaml OUT_DIR [--no-ema]

    OUT_DIR/unet        UNet2DConditionModel (LDMs with spatial transformers, e.g. cin256-v2)
                        or UNet2DModel (LDMs with plain attention blocks, e.g. LSUN-Churches)
    OUT_DIR/vae         AutoencoderKL (the KL first stage; VQ first stages are refused)
    OUT_DIR/scheduler   DDPMScheduler of the config's beta schedule
    OUT_DIR/class_embedding.safetensors   the ClassEmbedder table, when the LDM has one

The conversion is diffusers' own single-file code (``diffusers.loaders.single_file_utils``:
``create_unet_diffusers_config_from_ldm``, ``convert_ldm_unet_checkpoint``,
``create_vae_diffusers_config_from_ldm``, ``convert_ldm_vae_checkpoint``). It knows the spatial
transformer's attention only; for plain attention blocks (``AttentionBlock``: a fused per-head
``qkv`` Conv1d) ``split_legacy_attention`` finishes the job.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401,E402  (applies genrep.compat before diffusers imports torchvision)
import torch  # noqa: E402
import yaml  # noqa: E402
from torch import Tensor  # noqa: E402

CLASS_EMBEDDING_KEY = 'cond_stage_model.embedding.weight'


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
    first_stage = config['model']['params']['first_stage_config']['target']
    if not first_stage.endswith('AutoencoderKL'):
        raise ValueError(f'{path}: first stage {first_stage} is not an AutoencoderKL; only KL '
                         'LDMs convert to diffusers AutoencoderKL')
    return config


def unet_params(original_config: dict) -> dict:
    return original_config['model']['params']['unet_config']['params']


def vae_scale(original_config: dict) -> int:
    ddconfig = original_config['model']['params']['first_stage_config']['params']['ddconfig']
    return 2**(len(ddconfig['ch_mult']) - 1)


def legacy_unet_config(original_config: dict) -> dict:
    """UNet2DModel config of an LDM UNet with plain attention blocks (no spatial transformer)."""
    p = unet_params(original_config)
    channels = [p['model_channels'] * m for m in p['channel_mult']]
    attention = [2**i in p['attention_resolutions'] for i in range(len(channels))]
    head_dim = p.get('num_head_channels', -1)
    if head_dim in (-1, None):
        if len(set(channels)) != 1:
            raise ValueError('num_heads with channels that vary per level has no UNet2DModel '
                             'equivalent (its attention_head_dim is one number)')
        head_dim = channels[0] // p['num_heads']
    config = dict(
        sample_size=p['image_size'],
        in_channels=p['in_channels'],
        out_channels=p['out_channels'],
        block_out_channels=channels,
        layers_per_block=p['num_res_blocks'],
        down_block_types=['AttnDownBlock2D' if a else 'DownBlock2D' for a in attention],
        up_block_types=['AttnUpBlock2D' if a else 'UpBlock2D' for a in reversed(attention)],
        attention_head_dim=head_dim,
        resnet_time_scale_shift='scale_shift' if p.get('use_scale_shift_norm') else 'default',
        # AttentionBlock normalises with GroupNorm(32) always; UNet2DModel's middle attention
        # drops its norm under scale-shift unless the groups are given.
        attn_norm_num_groups=32,
    )
    if isinstance(p.get('num_classes'), int):
        config['num_class_embeds'] = p['num_classes']
    return config


def split_legacy_attention(state_dict: Dict[str, Tensor], head_dim: int) -> Dict[str, Tensor]:
    """The attention blocks' ``norm``, ``qkv``, ``proj_out`` as diffusers' ``Attention``.

    ``AttentionBlock``'s legacy QKV order groups the 3C channels by head: [q_h, k_h, v_h] for each
    head h; ``proj_out`` is a Conv1d with kernel 1.
    """
    new = {}
    for key, value in state_dict.items():
        if '.attentions.' not in key:
            new[key] = value
            continue
        prefix, name = key.rsplit('.', 2)[0], '.'.join(key.rsplit('.', 2)[1:])
        if name.startswith('norm.'):
            new[f'{prefix}.group_norm.{name[5:]}'] = value
        elif name.startswith('proj_out.'):
            new[f'{prefix}.to_out.0.{name[9:]}'] = value.flatten(1) if value.dim() > 1 else value
        elif name.startswith('qkv.'):
            channels = value.shape[0] // 3
            grouped = value.reshape(channels // head_dim, 3, head_dim, *value.shape[1:])
            for i, proj in enumerate(('to_q', 'to_k', 'to_v')):
                part = grouped[:, i].reshape(channels, *value.shape[1:])
                new[f'{prefix}.{proj}.{name[4:]}'] = part.flatten(1) if part.dim() > 1 else part
        else:
            raise KeyError(f'unexpected attention weight {key}')
    return new


def convert_unet(checkpoint: Dict[str, Tensor], original_config: dict, extract_ema: bool
                 ) -> Tuple[torch.nn.Module, dict]:
    from diffusers import UNet2DConditionModel, UNet2DModel
    from diffusers.loaders.single_file_utils import (convert_ldm_unet_checkpoint,
                                                     create_unet_diffusers_config_from_ldm)
    p = unet_params(original_config)
    if p.get('use_spatial_transformer'):
        image_size = p['image_size'] * vae_scale(original_config)
        config = create_unet_diffusers_config_from_ldm(original_config, checkpoint,
                                                       image_size=image_size)
        if config['attention_head_dim'] is None and p.get('num_head_channels', -1) > 0:
            # diffusers reads num_heads only; its attention_head_dim counts heads per level.
            config['attention_head_dim'] = [c // p['num_head_channels']
                                            for c in config['block_out_channels']]
        model = UNet2DConditionModel(**config)
        state_dict = convert_ldm_unet_checkpoint(checkpoint, config, extract_ema=extract_ema)
    else:
        config = legacy_unet_config(original_config)
        model = UNet2DModel(**config)
        state_dict = split_legacy_attention(
            convert_ldm_unet_checkpoint(checkpoint, config, extract_ema=extract_ema),
            config['attention_head_dim'])
    model.load_state_dict(state_dict, strict=True)
    return model, config


def convert_vae(checkpoint: Dict[str, Tensor], original_config: dict) -> torch.nn.Module:
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import (convert_ldm_vae_checkpoint,
                                                     create_vae_diffusers_config_from_ldm)
    image_size = unet_params(original_config)['image_size'] * vae_scale(original_config)
    config = create_vae_diffusers_config_from_ldm(original_config, checkpoint,
                                                  image_size=image_size)
    model = AutoencoderKL(**config)
    model.load_state_dict(convert_ldm_vae_checkpoint(checkpoint, config), strict=True)
    return model


def ddpm_scheduler(original_config: dict):
    """LDM's 'linear' schedule is linear in sqrt(beta): diffusers' 'scaled_linear'."""
    from diffusers import DDPMScheduler
    p = original_config['model']['params']
    return DDPMScheduler(num_train_timesteps=p.get('timesteps', 1000),
                         beta_start=p.get('linear_start', 0.0015),
                         beta_end=p.get('linear_end', 0.0195),
                         beta_schedule='scaled_linear', clip_sample=False)


def convert_ldm(checkpoint_path: str, config_path: str, out_dir: str, extract_ema: bool = True):
    """Convert and save; returns (unet, vae)."""
    from safetensors.torch import save_file
    original_config = read_original_config(config_path)
    checkpoint = read_ldm_checkpoint(checkpoint_path)
    unet, _ = convert_unet(checkpoint, original_config, extract_ema)
    vae = convert_vae(checkpoint, original_config)
    unet.save_pretrained(osp.join(out_dir, 'unet'), safe_serialization=True)
    vae.save_pretrained(osp.join(out_dir, 'vae'), safe_serialization=True)
    ddpm_scheduler(original_config).save_pretrained(osp.join(out_dir, 'scheduler'))
    if CLASS_EMBEDDING_KEY in checkpoint:
        os.makedirs(out_dir, exist_ok=True)
        save_file({'embedding.weight': checkpoint[CLASS_EMBEDDING_KEY].contiguous()},
                  osp.join(out_dir, 'class_embedding.safetensors'))
    return unet, vae


def main(argv=None):
    parser = argparse.ArgumentParser(description='CompVis LDM .ckpt -> diffusers directories')
    parser.add_argument('checkpoint', help='LDM checkpoint (.ckpt)')
    parser.add_argument('config', help="the checkpoint's original YAML config")
    parser.add_argument('out_dir', help='directory to write unet/, vae/, scheduler/ to')
    parser.add_argument('--no-ema', action='store_true',
                        help='convert the trained weights, not their EMA (model_ema.*)')
    args = parser.parse_args(argv)
    unet, _ = convert_ldm(args.checkpoint, args.config, args.out_dir, not args.no_ema)
    print(f'{args.checkpoint} -> {args.out_dir} (unet: {type(unet).__name__}, vae: '
          'AutoencoderKL)')


if __name__ == '__main__':
    main()

"""Randomly initialised checkpoints at the real size of every model family the paper configs read,
in the folder layouts the configs expect (diffusers / transformers ``save_pretrained``):

    stable-diffusion-v1-5   unet/ vae/ text_encoder/ tokenizer/  (ade20k, cocostuff, cub,
                                                      objectnet, nyuv2, ov_coco, ov_lvis)
    DiT-XL-2-256            transformer/ vae/                    (imagenet256_dit)
    DiT-XL-2-512            transformer/ vae/                    (ade20k_dit, ov_coco/lvis_dit)
    ldm-cin256-f8           unet/ vqvae/ class_embedding.safetensors  (imagenet256_ldm)
    ldm-celebahq-256        unet/ vqvae/                         (celebahq256_ldm)
    ldm-lsun-churches-256   unet/ vae/                           (lsun_church256_ldm)
    clip-vit-base-patch16   CLIPModel + tokenizer files          (the open-vocabulary heads'
                                                                  class-name text encoder)

Each ``config.json`` holds the upstream model's own values: Stable Diffusion 1.5's unet, vae and
text_encoder configs; facebook/DiT-XL-2-256 and -512 (transformer) with sd-vae-ft-ema; the LDMs'
UNets from latent-diffusion's released YAMLs (cin-ldm-vq-f8, celebahq-ldm-vq-4,
lsun_churches-ldm-kl-8) through the same functions that convert the real checkpoints
(tools/model_converters/ldm_to_diffusers.py). The CLIP tokenizer is in the real format
(vocab.json and merges.txt of byte-level BPE with CLIP's 49,408 tokens and its special tokens),
with synthetic merges: real-size and loadable, nothing downloaded.

Weights are random (seeded), so the checkpoints prove shapes, memory and time, never accuracy.
They are written on demand to a cache folder (gitignored ``work_dirs/`` by default, about 13 GB in
float32 for all seven), skipped when already complete:

    python tools/analysis_tools/make_random_checkpoints.py [--out work_dirs/random_checkpoints]
        [--only stable-diffusion-v1-5 DiT-XL-2-256 ...] [--dtype float32]

``component_configs(name)`` gives the (class name, config) of each subfolder without writing, and
``build_component(name, subfolder)`` builds one (on the meta device by default) for FLOP counts.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import genrep  # noqa: F401,E402  (applies genrep.compat before diffusers imports torchvision)
from genrep.utils.files import load_script  # noqa: E402

DONE = 'random_checkpoint.json'  # written last in a folder: the folder is complete

# -- upstream configs -----------------------------------------------------------------------------
# runwayml/stable-diffusion-v1-5 unet/config.json (859.5M parameters).
SD15_UNET = dict(
    act_fn='silu', attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280],
    center_input_sample=False, cross_attention_dim=768,
    down_block_types=['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D',
                      'DownBlock2D'],
    downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=2,
    mid_block_scale_factor=1, norm_eps=1e-05, norm_num_groups=32, out_channels=4, sample_size=64,
    up_block_types=['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'])
# Its vae/config.json (83.7M); sd-vae-ft-ema (DiT's VAE) has the same shapes at sample_size 256.
SD_VAE = dict(
    act_fn='silu', block_out_channels=[128, 256, 512, 512],
    down_block_types=['DownEncoderBlock2D'] * 4, in_channels=3, latent_channels=4,
    layers_per_block=2, norm_num_groups=32, out_channels=3, sample_size=512,
    up_block_types=['UpDecoderBlock2D'] * 4)
# Its text_encoder/config.json: openai/clip-vit-large-patch14's text tower (123.1M).
SD15_TEXT_ENCODER = dict(
    attention_dropout=0.0, bos_token_id=0, dropout=0.0, eos_token_id=2, hidden_act='quick_gelu',
    hidden_size=768, initializer_factor=1.0, initializer_range=0.02, intermediate_size=3072,
    layer_norm_eps=1e-05, max_position_embeddings=77, num_attention_heads=12,
    num_hidden_layers=12, pad_token_id=1, projection_dim=768, vocab_size=49408)
CLIP_VOCAB_SIZE = 49408
CLIP_MAX_LENGTH = 77
# facebook/DiT-XL-2-256 transformer/config.json (675M); -512 differs in sample_size only.
# openai/clip-vit-base-patch16 config.json (149.6M): the open-vocabulary heads' text encoder.
CLIP_B16_TEXT = dict(hidden_size=512, intermediate_size=2048, num_attention_heads=8,
                     num_hidden_layers=12, max_position_embeddings=77, vocab_size=49408,
                     hidden_act='quick_gelu', bos_token_id=0, eos_token_id=2, pad_token_id=1,
                     projection_dim=512)
CLIP_B16_VISION = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                       num_hidden_layers=12, image_size=224, patch_size=16,
                       hidden_act='quick_gelu', projection_dim=512)
CLIP_B16 = dict(text_config=CLIP_B16_TEXT, vision_config=CLIP_B16_VISION, projection_dim=512,
                logit_scale_init_value=2.6592)
DIT_XL2 = dict(
    activation_fn='gelu-approximate', attention_bias=True, attention_head_dim=72, dropout=0.0,
    in_channels=4, norm_elementwise_affine=False, norm_num_groups=32, norm_type='ada_norm_zero',
    num_attention_heads=16, num_embeds_ada_norm=1000, num_layers=28, out_channels=8,
    patch_size=2, sample_size=32, upcast_attention=False)

# latent-diffusion's released YAMLs, the parts that set the shapes (model.params).
LDM_YAML = {
    'ldm-cin256-f8': dict(  # configs/latent-diffusion/cin-ldm-vq-f8.yaml
        unet=dict(image_size=32, in_channels=4, out_channels=4, model_channels=256,
                  attention_resolutions=[4, 2, 1], num_res_blocks=2, channel_mult=[1, 2, 4],
                  num_head_channels=32, use_spatial_transformer=True, transformer_depth=1,
                  context_dim=512),
        first_stage=dict(embed_dim=4, n_embed=16384, z_channels=4, resolution=256, ch=128,
                         ch_mult=[1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[32])),
    'ldm-celebahq-256': dict(  # configs/latent-diffusion/celebahq-ldm-vq-4.yaml (LDM Table 14)
        unet=dict(image_size=64, in_channels=3, out_channels=3, model_channels=224,
                  attention_resolutions=[8, 4, 2], num_res_blocks=2, channel_mult=[1, 2, 3, 4],
                  num_head_channels=32),
        first_stage=dict(embed_dim=3, n_embed=8192, z_channels=3, resolution=256, ch=128,
                         ch_mult=[1, 2, 4], num_res_blocks=2, attn_resolutions=[])),
    'ldm-lsun-churches-256': dict(  # configs/latent-diffusion/lsun_churches-ldm-kl-8.yaml
        unet=dict(image_size=32, in_channels=4, out_channels=4, model_channels=192,
                  attention_resolutions=[1, 2, 4, 8], num_res_blocks=2,
                  channel_mult=[1, 2, 2, 4, 4], num_heads=8, use_scale_shift_norm=True,
                  resblock_updown=True),
        first_stage=dict(embed_dim=4, z_channels=4, resolution=256, ch=128, ch_mult=[1, 2, 4, 4],
                         num_res_blocks=2, attn_resolutions=[]),
        scale_factor=0.22765929),
}

FAMILIES = ('stable-diffusion-v1-5', 'DiT-XL-2-256', 'DiT-XL-2-512', 'ldm-cin256-f8',
            'ldm-celebahq-256', 'ldm-lsun-churches-256', 'clip-vit-base-patch16')


def _ldm_converter():
    """tools/model_converters/ldm_to_diffusers.py, the converter of the real LDM checkpoints."""
    return load_script(osp.join(ROOT, 'tools', 'model_converters', 'ldm_to_diffusers.py'))


def _ldm_original_config(name: str) -> dict:
    """The YAML's dict as the converter reads it (model.params: unet_config, first_stage_config,
    scale_factor)."""
    spec = LDM_YAML[name]
    first = dict(spec['first_stage'])
    target = 'ldm.models.autoencoder.' + ('VQModelInterface' if 'n_embed' in first
                                          else 'AutoencoderKL')
    top = {k: first.pop(k) for k in ('embed_dim', 'n_embed') if k in first}
    ddconfig = dict(double_z='n_embed' not in top, in_channels=3, out_ch=3, dropout=0.0, **first)
    return dict(model=dict(params=dict(
        scale_factor=spec.get('scale_factor', 1.0),
        unet_config=dict(params=dict(spec['unet'])),
        first_stage_config=dict(target=target, params=dict(top, ddconfig=ddconfig)))))


def ldm_unet_config(name: str) -> Tuple[str, dict]:
    """(class name, config) of an LDM's UNet from its YAML, as the converter of the real
    checkpoints builds it."""
    class_name, config, _ = _ldm_converter().unet_diffusers_config(_ldm_original_config(name))
    # A head count the converter imposes after loading (LSUN's 8 heads at every width; the
    # config then sets the denoiser's num_attention_heads) changes no shape and no FLOP count.
    return class_name, config


def ldm_first_stage_config(name: str) -> Tuple[str, dict]:
    """(class name, config) of an LDM's first stage (VQModel or AutoencoderKL) from its YAML, as
    the converter builds it, with LDM's scale factor."""
    original = _ldm_original_config(name)
    return _ldm_converter().first_stage_diffusers_config(
        original, original['model']['params']['scale_factor'])


def component_configs(name: str) -> Dict[str, Tuple[str, dict]]:
    """subfolder -> (class name, config) of the checkpoint ``name`` (one of ``FAMILIES``); a
    subfolder starting with '.' is the folder itself (a transformers model with its tokenizer)."""
    if name == 'clip-vit-base-patch16':
        return {'.': ('CLIPModel', CLIP_B16),
                '.tokenizer': ('CLIPTokenizer', dict(vocab_size=CLIP_VOCAB_SIZE))}
    if name == 'stable-diffusion-v1-5':
        return {'unet': ('UNet2DConditionModel', SD15_UNET), 'vae': ('AutoencoderKL', SD_VAE),
                'text_encoder': ('CLIPTextModel', SD15_TEXT_ENCODER),
                'tokenizer': ('CLIPTokenizer', dict(vocab_size=CLIP_VOCAB_SIZE))}
    if name in ('DiT-XL-2-256', 'DiT-XL-2-512'):
        side = int(name.rsplit('-', 1)[1]) // 8
        return {'transformer': ('DiTTransformer2DModel', dict(DIT_XL2, sample_size=side)),
                'vae': ('AutoencoderKL', dict(SD_VAE, sample_size=256))}
    if name in LDM_YAML:
        first = ldm_first_stage_config(name)
        return {'unet': ldm_unet_config(name),
                'vqvae' if first[0] == 'VQModel' else 'vae': first}
    raise KeyError(f'make_random_checkpoints: unknown checkpoint {name!r}; one of {FAMILIES}')


def _model_class(class_name: str):
    import diffusers
    import transformers
    if hasattr(diffusers, class_name):
        return getattr(diffusers, class_name)
    return getattr(transformers, class_name)


def build_component(name: str, subfolder: str, device: str = 'meta'):
    """The randomly initialised model of ``name/subfolder`` (on the meta device by default: shapes
    without memory, what FLOP counts need)."""
    import torch
    class_name, config = component_configs(name)[subfolder]
    cls = _model_class(class_name)
    with torch.device(device):
        if class_name == 'CLIPTextModel':
            from transformers import CLIPTextConfig
            return cls(CLIPTextConfig(**config))
        if class_name == 'CLIPModel':
            from transformers import CLIPConfig
            return cls(CLIPConfig(**config))
        return cls.from_config(dict(config))


# -- the CLIP tokenizer in its real format -------------------------------------------------------
def byte_symbols():
    """The 256 printable stand-ins of the bytes in byte-level BPE (GPT-2's and CLIP's mapping:
    printable Latin-1 bytes stand for themselves, the others are shifted past 255), in CLIP's
    vocabulary order."""
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) +
                 list(range(ord('®'), ord('ÿ') + 1)))
    codes = printable[:]
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + shift)
            shift += 1
    return [chr(c) for c in codes]


def clip_vocab_and_merges(vocab_size: int = CLIP_VOCAB_SIZE):
    """vocab (token -> id) and merges of a byte-level BPE of CLIP's layout: the 256 byte symbols,
    the same with the end-of-word mark '</w>', one token per merge, then '<|startoftext|>' and
    '<|endoftext|>' (the last two ids). The merges are synthetic: pairs of symbols, lower-case
    letters and digits first, so common words break into two-symbol tokens."""
    symbols = byte_symbols()
    first = [c for c in 'abcdefghijklmnopqrstuvwxyz0123456789'] + [
        s for s in symbols if s not in 'abcdefghijklmnopqrstuvwxyz0123456789']
    tokens = symbols + [s + '</w>' for s in symbols]
    num_merges = vocab_size - len(tokens) - 2
    merges = []
    for left in first:
        for right in first:
            for end in ('</w>', ''):
                if len(merges) == num_merges:
                    break
                merges.append((left, right + end))
    tokens += [left + right for left, right in merges] + ['<|startoftext|>', '<|endoftext|>']
    return {token: index for index, token in enumerate(tokens)}, merges


def write_clip_tokenizer(folder: str) -> None:
    """vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json as in SD 1.5's
    tokenizer/ folder."""
    os.makedirs(folder, exist_ok=True)
    vocab, merges = clip_vocab_and_merges()
    with open(osp.join(folder, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(osp.join(folder, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n' + ''.join(f'{a} {b}\n' for a, b in merges))
    special = dict(bos_token='<|startoftext|>', eos_token='<|endoftext|>',
                   pad_token='<|endoftext|>', unk_token='<|endoftext|>')
    with open(osp.join(folder, 'special_tokens_map.json'), 'w') as f:
        json.dump(special, f, indent=2)
    with open(osp.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump(dict(special, add_prefix_space=False, do_lower_case=True, errors='replace',
                       model_max_length=CLIP_MAX_LENGTH, tokenizer_class='CLIPTokenizer'),
                  f, indent=2)


# -- writing --------------------------------------------------------------------------------------
def write_checkpoint(name: str, out: str, dtype: str = 'float32', seed: int = 0) -> str:
    """Writes ``out/name`` (skipped when complete); returns its path."""
    import torch
    folder = osp.join(out, name)
    if osp.isfile(osp.join(folder, DONE)):
        return folder
    torch.manual_seed(seed)
    counts = {}
    for subfolder, (class_name, config) in component_configs(name).items():
        target = folder if subfolder.startswith('.') else osp.join(folder, subfolder)
        if class_name == 'CLIPTokenizer':
            write_clip_tokenizer(target)
            continue
        start = time.time()
        model = build_component(name, subfolder, device='cpu').to(getattr(torch, dtype))
        model.save_pretrained(target)
        counts[subfolder] = sum(p.numel() for p in model.parameters())
        print(f'{name}/{subfolder}: {class_name}, {counts[subfolder] / 1e6:.1f}M parameters, '
              f'{time.time() - start:.0f} s', flush=True)
        del model
    if name == 'ldm-cin256-f8':
        # the ClassEmbedder table the converter writes beside a class-conditional LDM
        from safetensors.torch import save_file
        unet = LDM_YAML[name]['unet']
        save_file({'embedding.weight': torch.randn(1000, unet['context_dim']).to(
            getattr(torch, dtype))}, osp.join(folder, 'class_embedding.safetensors'))
    with open(osp.join(folder, DONE), 'w') as f:
        json.dump(dict(parameters=counts, dtype=dtype, seed=seed, random=True), f, indent=2)
    return folder


def parse_args():
    parser = argparse.ArgumentParser(description='Real-size random checkpoints of the paper '
                                     'configs\' model families')
    parser.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'random_checkpoints'))
    parser.add_argument('--only', nargs='+', choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument('--dtype', default='float32', choices=['float32', 'float16', 'bfloat16'])
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    for name in args.only:
        print(write_checkpoint(name, args.out, args.dtype, args.seed))


if __name__ == '__main__':
    main()

"""Convert an original DiT checkpoint (facebookresearch/DiT ``.pt``) to a diffusers
``DiTTransformer2DModel`` directory (``config.json`` + ``diffusion_pytorch_model.safetensors``).

    python tools/model_converters/dit_to_diffusers.py DiT-XL-2-256x256.pt OUT_DIR [--num-heads 16]

For the folders the configs read (imagenet256_dit.py: ``checkpoints/DiT-XL-2-256``), OUT_DIR is
``checkpoints/DiT-XL-2-256/transformer``, beside DiT's VAE (stabilityai/sd-vae-ft-ema saved with
``save_pretrained``) as ``checkpoints/DiT-XL-2-256/vae``.

diffusers' own DiT conversion lives in its repository's scripts, not in the package, so the key
mapping is here (``dit_to_diffusers_state_dict``). The architecture is read from the weights;
only the number of attention heads is not in them: DiT's model table (S: 6, B: 12, L and XL: 16)
gives it from the width, ``--num-heads`` overrides it. A training checkpoint (``model``, ``ema``,
``opt``) is converted from its EMA weights, as DiT's sample.py does.

Two things of DiT that a diffusers config cannot state: its timestep frequencies (exp(-ln(10^4)
i / 128); diffusers' DiT divides by 127), which ``genrep.DiTDenoiser`` restores
(``dit_timesteps=True``), and nothing else: with ``norm_eps=1e-6`` written here, the wrapped model
computes DiT's forward (tests/test_model_converters.py checks it against DiT's computation).
"""
import argparse
import math
import os.path as osp
import re
import sys
from typing import Dict, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401,E402  (applies genrep.compat before diffusers imports torchvision)
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

# DiT's models.py: hidden size -> heads of DiT-S, -B, -L, -XL.
DIT_HEADS = {384: 6, 768: 12, 1024: 16, 1152: 16}


def read_dit_checkpoint(path: str) -> Dict[str, Tensor]:
    """The DiT state dict of ``path``: the file itself, or the ``ema`` of a training checkpoint."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'DiT checkpoint {path} not found')
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    if 'ema' in checkpoint:
        checkpoint = checkpoint['ema']
    if 'x_embedder.proj.weight' not in checkpoint:
        raise KeyError(f'{path} is not a DiT state dict: no x_embedder.proj.weight (keys: '
                       f'{sorted(checkpoint)[:5]}...)')
    return checkpoint


def dit_config(state_dict: Dict[str, Tensor], num_heads: Optional[int] = None) -> dict:
    """``DiTTransformer2DModel`` config of a DiT state dict."""
    hidden, in_channels, patch_size, _ = state_dict['x_embedder.proj.weight'].shape
    num_layers = len({m.group(1) for k in state_dict for m in [re.match(r'blocks\.(\d+)\.', k)]
                      if m})
    if num_heads is None:
        if hidden not in DIT_HEADS:
            raise ValueError(f'hidden size {hidden} is none of DiT-S/B/L/XL: give --num-heads')
        num_heads = DIT_HEADS[hidden]
    num_patches = state_dict['pos_embed'].shape[1]
    num_classes = state_dict['y_embedder.embedding_table.weight'].shape[0]
    # DiT keeps one extra row, the null class of classifier-free guidance, when it drops labels;
    # diffusers' LabelEmbedding adds that row itself (class_dropout_prob > 0).
    return dict(
        num_attention_heads=num_heads,
        attention_head_dim=hidden // num_heads,
        in_channels=in_channels,
        out_channels=state_dict['final_layer.linear.weight'].shape[0] // patch_size**2,
        num_layers=num_layers,
        sample_size=int(math.isqrt(num_patches)) * patch_size,
        patch_size=patch_size,
        num_embeds_ada_norm=num_classes - 1,
        # DiT's LayerNorms use eps 1e-6 (diffusers' default for the pre-MLP norm is 1e-5)
        norm_eps=1e-6,
    )


def dit_to_diffusers_state_dict(state_dict: Dict[str, Tensor], num_layers: int
                                ) -> Dict[str, Tensor]:
    """DiT's names -> DiTTransformer2DModel's. diffusers gives every block its own timestep and
    class embedders (AdaLayerNormZero), so DiT's shared embedders are copied into each block;
    the fused qkv projection is split; ``pos_embed`` (fixed sin-cos) is recomputed by diffusers."""
    sd = state_dict
    new = {'pos_embed.proj.weight': sd['x_embedder.proj.weight'],
           'pos_embed.proj.bias': sd['x_embedder.proj.bias'],
           'proj_out_1.weight': sd['final_layer.adaLN_modulation.1.weight'],
           'proj_out_1.bias': sd['final_layer.adaLN_modulation.1.bias'],
           'proj_out_2.weight': sd['final_layer.linear.weight'],
           'proj_out_2.bias': sd['final_layer.linear.bias']}
    for i in range(num_layers):
        block, new_block = f'blocks.{i}.', f'transformer_blocks.{i}.'
        emb = new_block + 'norm1.emb.'
        for p in ('weight', 'bias'):
            new[emb + f'timestep_embedder.linear_1.{p}'] = sd[f't_embedder.mlp.0.{p}']
            new[emb + f'timestep_embedder.linear_2.{p}'] = sd[f't_embedder.mlp.2.{p}']
            new[new_block + f'norm1.linear.{p}'] = sd[block + f'adaLN_modulation.1.{p}']
            q, k, v = sd[block + f'attn.qkv.{p}'].chunk(3, dim=0)
            new[new_block + f'attn1.to_q.{p}'] = q
            new[new_block + f'attn1.to_k.{p}'] = k
            new[new_block + f'attn1.to_v.{p}'] = v
            new[new_block + f'attn1.to_out.0.{p}'] = sd[block + f'attn.proj.{p}']
            new[new_block + f'ff.net.0.proj.{p}'] = sd[block + f'mlp.fc1.{p}']
            new[new_block + f'ff.net.2.{p}'] = sd[block + f'mlp.fc2.{p}']
        new[emb + 'class_embedder.embedding_table.weight'] = sd['y_embedder.embedding_table.weight']
    return {k: v.contiguous() for k, v in new.items()}


def convert_dit(path: str, out_dir: str, num_heads: Optional[int] = None):
    """Convert ``path`` and save the model to ``out_dir``; returns the diffusers model."""
    from diffusers import DiTTransformer2DModel
    state_dict = read_dit_checkpoint(path)
    config = dit_config(state_dict, num_heads)
    model = DiTTransformer2DModel(**config)
    model.load_state_dict(dit_to_diffusers_state_dict(state_dict, config['num_layers']),
                          strict=True)
    # DiT's pos_embed is the same fixed sin-cos table: a mismatch means a wrong size or patch.
    if not torch.allclose(model.pos_embed.pos_embed, state_dict['pos_embed'].float(), atol=1e-5):
        raise ValueError(f'{path}: pos_embed is not the sin-cos table of sample_size '
                         f'{config["sample_size"]}, patch_size {config["patch_size"]}')
    model.save_pretrained(out_dir, safe_serialization=True)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description='DiT .pt -> diffusers DiTTransformer2DModel')
    parser.add_argument('checkpoint', help='original DiT checkpoint (.pt)')
    parser.add_argument('out_dir', help='diffusers model directory to write')
    parser.add_argument('--num-heads', type=int,
                        help='attention heads (default: from the width, DiT-S/B/L/XL)')
    args = parser.parse_args(argv)
    model = convert_dit(args.checkpoint, args.out_dir, args.num_heads)
    print(f'{args.checkpoint} -> {args.out_dir} ({dict(model.config)["num_layers"]} blocks)')


if __name__ == '__main__':
    main()

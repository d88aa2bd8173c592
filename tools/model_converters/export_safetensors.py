"""Export the weights of an mmengine checkpoint to a safetensors file (weights only).

The checkpoint's ``state_dict`` (parameters and buffers; no optimizer, scheduler, message hub or
pickled objects) goes into OUT as plain tensors; epoch, iteration, source file and the config text
go into the file's string metadata. Non-finite weights are refused: a NaN checkpoint is not
published.

    python tools/model_converters/export_safetensors.py CHECKPOINT OUT.safetensors [--prefix P]

Loading back into the config's model:

    from safetensors.torch import load_file
    model = genrep.apis.init_model(CONFIG)
    model.load_state_dict(load_file(OUT))

``--prefix perception.`` keeps only the keys under that prefix, without it (e.g. the perception
model of a GenRep checkpoint, loadable into the perception config's classifier).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import torch
from safetensors.torch import load_file, save_file

from genrep.engine.checkpoints import verify_checkpoint

METADATA_KEYS = ('epoch', 'iter', 'mmengine_version', 'experiment_name', 'cfg')


def parse_args():
    parser = argparse.ArgumentParser(description='Export checkpoint weights to safetensors')
    parser.add_argument('checkpoint', help='mmengine checkpoint (.pth)')
    parser.add_argument('out', help='output .safetensors file')
    parser.add_argument('--prefix', default='',
                        help='keep only the keys starting with this prefix, without it')
    return parser.parse_args()


def checkpoint_weights(path: str, prefix: str = '') -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of the checkpoint at ``path`` (or the file's dict itself if it has none),
    keys under ``prefix`` only, the prefix removed."""
    verify_checkpoint(path)
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    state = checkpoint.get('state_dict', checkpoint)
    weights = {key[len(prefix):]: value for key, value in state.items()
               if key.startswith(prefix) and isinstance(value, torch.Tensor)}
    if not weights:
        raise ValueError(f'{path}: no tensor under the prefix {prefix!r} in its state_dict')
    return weights


def export(checkpoint: str, out: str, prefix: str = '') -> Dict[str, torch.Tensor]:
    """Write the checkpoint's weights to ``out``; returns what was written."""
    if not out.endswith('.safetensors'):
        raise ValueError(f'{out}: the output file must end in .safetensors')
    weights = checkpoint_weights(checkpoint, prefix)
    for key, value in weights.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f'{checkpoint}: weight {prefix}{key} holds NaN or infinite values; '
                             'not exported')
    meta = torch.load(checkpoint, map_location='cpu', weights_only=True).get('meta', {})
    metadata = {key: str(meta[key]) for key in METADATA_KEYS if key in meta}
    metadata.update(source=osp.abspath(checkpoint), prefix=prefix)
    # safetensors stores each tensor on its own: tied or viewed tensors are copied apart.
    save_file({key: value.detach().contiguous().clone() for key, value in weights.items()}, out,
              metadata=metadata)
    return weights


def load_weights(path: str, device: Optional[str] = 'cpu') -> Dict[str, torch.Tensor]:
    """The weights of a file written by :func:`export`, for ``model.load_state_dict``."""
    return load_file(path, device=device)


def main():
    args = parse_args()
    weights = export(args.checkpoint, args.out, args.prefix)
    numel = sum(value.numel() for value in weights.values())
    print(f'{args.out}: {len(weights)} tensors, {numel} values from {args.checkpoint}')


if __name__ == '__main__':
    main()

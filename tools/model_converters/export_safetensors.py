"""Export the weights of an mmengine checkpoint to a safetensors file (weights only).

The checkpoint's ``state_dict`` (parameters and buffers; no optimizer, scheduler, message hub or
pickled objects) goes into OUT as plain tensors; epoch, iteration, source file and the config text
go into the file's string metadata. Non-finite weights are refused: a NaN checkpoint is not
published.

    python tools/model_converters/export_safetensors.py CHECKPOINT OUT.safetensors [--prefix P]
        [--drop KEY_PREFIX ...]

Loading back into the config's model, as the demos and inferencers do:

    model = genrep.apis.init_model(CONFIG, OUT)   # dataset_meta (class names) included

``--drop semantic_denoiser.`` leaves out weights that inference does not read (GenRep's semantic
EMA copy, a training-time target): the file names what it dropped, and ``init_model`` accepts
exactly those keys as missing. The checkpoint's ``dataset_meta`` goes into the metadata as JSON.

``--prefix perception.`` keeps only the keys under that prefix, without it (e.g. the perception
model of a GenRep checkpoint, loadable into the perception config's classifier).
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

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
    parser.add_argument('--drop', nargs='+', default=[],
                        help='leave out the keys starting with these prefixes (inference-free '
                        'weights such as semantic_denoiser.)')
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


def export(checkpoint: str, out: str, prefix: str = '',
           drop: Sequence[str] = ()) -> Dict[str, torch.Tensor]:
    """Write the checkpoint's weights to ``out``, less the keys under the ``drop`` prefixes;
    returns what was written."""
    if not out.endswith('.safetensors'):
        raise ValueError(f'{out}: the output file must end in .safetensors')
    weights = checkpoint_weights(checkpoint, prefix)
    weights = {key: value for key, value in weights.items() if not key.startswith(tuple(drop))}
    for key, value in weights.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f'{checkpoint}: weight {prefix}{key} holds NaN or infinite values; '
                             'not exported')
    meta = torch.load(checkpoint, map_location='cpu', weights_only=True).get('meta', {})
    metadata = {key: str(meta[key]) for key in METADATA_KEYS if key in meta}
    metadata.update(source=osp.basename(checkpoint), prefix=prefix, dropped=json.dumps(list(drop)))
    if meta.get('dataset_meta'):
        metadata['dataset_meta'] = json.dumps(meta['dataset_meta'])
    # safetensors stores each tensor on its own: tied or viewed tensors are copied apart.
    save_file({key: value.detach().contiguous().clone() for key, value in weights.items()}, out,
              metadata=metadata)
    return weights


def load_weights(path: str, device: Optional[str] = 'cpu') -> Dict[str, torch.Tensor]:
    """The weights of a file written by :func:`export`, for ``model.load_state_dict``."""
    return load_file(path, device=device)


def main():
    args = parse_args()
    weights = export(args.checkpoint, args.out, args.prefix, args.drop)
    numel = sum(value.numel() for value in weights.values())
    print(f'{args.out}: {len(weights)} tensors, {numel} values from {args.checkpoint}')


if __name__ == '__main__':
    main()

"""Draw class-conditional samples from a GenRep checkpoint: the same weights that serve perception.

    python tools/sample.py CONFIG CHECKPOINT [--out grid.png] [--per-class 8] [--steps 50]
"""
import argparse
import os
import os.path as osp
import sys

# The tools run the genrep of their own checkout, whatever else is installed.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import numpy as np
import torch
from mmengine.config import DictAction

from genrep.apis import init_model
from genrep.utils import sample_grid


def parse_args():
    parser = argparse.ArgumentParser(description='Class-conditional samples of a GenRep model')
    parser.add_argument('config', help='config file of the GenRep model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', default='samples.png', help='where to write the sample grid (PNG)')
    parser.add_argument('--per-class', type=int, default=8, help='samples per class (grid rows)')
    parser.add_argument('--classes', type=int, nargs='+', help='classes (default: all)')
    parser.add_argument('--steps', type=int, default=50, help='respaced reverse steps')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args()


def main():
    args = parse_args()
    model = init_model(args.config, args.checkpoint, args.device, args.cfg_options)
    if not hasattr(model, 'sample_classes'):
        raise TypeError(f'{args.config}: model {type(model).__name__} cannot sample; '
                        'tools/sample.py needs a genrep.GenRep model')

    classes = args.classes if args.classes is not None else range(model.denoiser.num_classes)
    images, labels = model.sample_classes(classes, args.per_class, args.steps, args.seed)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    sample_grid(images, rows=args.per_class).save(args.out)
    np.savez_compressed(osp.splitext(args.out)[0] + '.npz', images=images.cpu().numpy(),
                        labels=labels.numpy())
    print(f'{len(labels)} samples of classes {list(classes)} ({args.steps} steps) '
          f'-> {args.out}')


if __name__ == '__main__':
    main()

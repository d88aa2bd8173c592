"""Class-conditional samples of a GenRep model, drawn as a grid with each column's class name.

    python demo/generation_demo.py CONFIG CHECKPOINT [--classes Trouser Bag 7] [--per-class 4]
        [--steps 50] [--guidance-scale 5] [--seed 0] [--out generation.png] [--device cpu]

Classes are given by name (the checkpoint's or the config's class names) or by index; default:
all. The guidance scale (classifier-free, against the null class) defaults to the one the
config's GenerationEvalHook samples with, else 1 (unguided). For the standard .npz of evaluation
suites use tools/sample.py.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)

from genrep.apis import config_dataset_meta, init_model
from genrep.utils import labelled_grid


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='A labelled grid of class-conditional samples')
    parser.add_argument('config', help='config file of the GenRep model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--classes', nargs='+', help='class names or indices (default: all)')
    parser.add_argument('--per-class', type=int, default=4, help='samples (rows) per class')
    parser.add_argument('--steps', type=int, default=50, help='respaced reverse steps')
    parser.add_argument('--guidance-scale', type=float,
                        help="classifier-free guidance (default: the config's test sampling, "
                        'else 1)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default='generation.png', help='the grid (PNG)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    for name in ('per_class', 'steps'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    return args


def class_indices(requested, names, num_classes: int, config: str):
    """Names or indices -> indices in [0, num_classes), else one line naming the offender."""
    if requested is None:
        return list(range(num_classes))
    indices = []
    for item in requested:
        if item in names:
            indices.append(names.index(item))
        elif item.isdigit() and int(item) < num_classes:
            indices.append(int(item))
        else:
            raise ValueError(f'--classes {item!r}: not a class of {config} (names: '
                             f'{", ".join(names) or "none"}; indices 0..{num_classes - 1})')
    return indices


def config_guidance_scale(cfg) -> float:
    """The guidance scale of the config's GenerationEvalHook sampling, else 1."""
    for hook in cfg.get('custom_hooks', None) or []:
        if str(hook.get('type', '')).endswith('GenerationEvalHook'):
            return float((hook.get('sampling') or {}).get('guidance_scale', 1.0))
    return 1.0


def main(argv=None):
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, args.device)
    if not hasattr(model, 'sample_classes'):
        raise TypeError(f'{args.config}: model {type(model).__name__} cannot sample; the '
                        'generation demo needs a genrep.GenRep model')
    num_classes = model.denoiser.num_classes
    meta = model.dataset_meta or config_dataset_meta(model.cfg)
    names = list(meta.get('classes') or [])
    classes = class_indices(args.classes, names, num_classes, args.config)
    scale = (args.guidance_scale if args.guidance_scale is not None else
             config_guidance_scale(model.cfg))
    images, _ = model.sample_classes(classes, args.per_class, args.steps, seed=args.seed,
                                     guidance_scale=scale)
    labels = [names[c] if c < len(names) else str(c) for c in classes]
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    labelled_grid(images, args.per_class, labels).save(args.out)
    print(f'{len(images)} samples of {", ".join(labels)} ({args.steps} steps, guidance '
          f'{scale:g}) -> {args.out}')


if __name__ == '__main__':
    main()

"""Draw class-conditional samples from a GenRep checkpoint: the same weights that serve perception.

    python tools/sample.py CONFIG CHECKPOINT [--out grid.png] [--per-class 8] [--steps 50]
        [--classes 1 4 7 | --unconditional] [--batch-size 250] [--seed 0] [--grid-rows 8]
    tools/dist_sample.sh CONFIG CHECKPOINT GPUS [the same options]

Writes, next to the grid ``--out`` (PNG: a column per class, ``--grid-rows`` rows), the samples in
the standard evaluation layout that ADM's evaluation suite reads: ``<out stem>.npz`` with ``arr_0``
the images, uint8 [N, H, W, C] (C as the model draws: 1 for Fashion-MNIST, 3 for RGB), and
``arr_1`` their classes [N], class-major.

The N = len(classes) x per-class samples are drawn in chunks of ``--batch-size``; chunk i from its
own seed (``chunk_seed(seed, i)``), so a chunk is the same whichever run draws it. Each finished
chunk is written to ``<out stem>.partial/``; a run that stops is resumed by the same command, which
skips the chunks found there (and refuses a partial folder written with other arguments). The
folder is removed when the ``.npz`` is complete.

Over several processes (``--launcher pytorch``, what tools/dist_sample.sh passes; gloo on CPUs,
genrep.compat) process r of W draws the chunks i with i % W == r into the same partial folder, and
process 0 joins them once all are written. A chunk's samples depend on its index alone, so the
``.npz`` is the same for any number of processes at the same ``--batch-size``, and a run stopped
with W processes resumes with any other number.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
from typing import List, Sequence, Tuple

# The tools run the genrep of their own checkout, whatever else is installed.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.dist import barrier, get_dist_info, init_dist
from mmengine.utils import ProgressBar

from genrep.apis import init_model
from genrep.utils import sample_grid


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Class-conditional samples of a GenRep model')
    parser.add_argument('config', help='config file of the GenRep model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', default='samples.png',
                        help='the sample grid (PNG); the .npz is written beside it')
    parser.add_argument('--per-class', type=int, default=8, help='samples per class')
    parser.add_argument('--classes', type=int, nargs='+', help='classes (default: all)')
    parser.add_argument('--unconditional', action='store_true',
                        help='draw the null class (an unconditional model, e.g. CelebA-HQ or '
                        'LSUN LDMs); --per-class samples in all')
    parser.add_argument('--steps', type=int, default=50, help='respaced reverse steps')
    parser.add_argument('--batch-size', type=int, default=250,
                        help='samples per reverse chain (and per resumable chunk)')
    parser.add_argument('--grid-rows', type=int, default=8,
                        help='samples of each class in the grid (at most --per-class)')
    parser.add_argument('--sampler', choices=('ddpm', 'ddim'), default='ddpm',
                        help='ancestral steps (with the semantic adjustment) or DDIM')
    parser.add_argument('--eta', type=float, default=0.0, help="DDIM's noise scale")
    parser.add_argument('--guidance-scale', type=float, default=1.0,
                        help='classifier-free guidance against the null class (1: unguided)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='pytorch: one of the torchrun processes of tools/dist_sample.sh')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    for name in ('steps', 'per_class', 'batch_size', 'grid_rows'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if args.eta < 0 or (args.eta > 0 and args.sampler != 'ddim'):
        parser.error(f'--eta {args.eta}: a DDIM noise scale >= 0 (with --sampler ddim)')
    if args.guidance_scale < 0:
        parser.error(f'--guidance-scale must be >= 0, got {args.guidance_scale}')
    if not args.out.lower().endswith('.png'):
        parser.error(f'--out {args.out!r}: the grid is a .png file')
    if args.unconditional and args.classes is not None:
        parser.error('--unconditional draws the null class; leave out --classes')
    if args.unconditional and args.guidance_scale != 1:
        parser.error(f'--guidance-scale {args.guidance_scale}: guidance steers towards a class, '
                     'and --unconditional draws none (use 1)')
    return args


def check_classes(classes: Sequence[int], num_classes: int, config: str) -> None:
    """Every class id in [0, num_classes), else one line naming the offenders."""
    wrong = [c for c in classes if not 0 <= c < num_classes]
    if wrong:
        raise ValueError(f'--classes {wrong}: {config} draws classes 0..{num_classes - 1}')


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index``: independent streams for every (seed, index) pair."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def to_uint8_nhwc(images: torch.Tensor) -> np.ndarray:
    """Images [N, C, H, W] in [-1, 1] as uint8 [N, H, W, C], quantised as a saved PNG would be."""
    pixels = ((images.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()


class PartialSamples:
    """The finished chunks of one sampling run, a ``chunk_<i>.npz`` each, in ``folder``.

    ``identity`` (the arguments the samples depend on) is recorded in ``run.json``; a folder
    recorded for other arguments is refused, so a resumed run never mixes two runs' samples.
    """

    def __init__(self, folder: str, identity: dict):
        self.folder = folder
        record = osp.join(folder, 'run.json')
        if osp.isfile(record):
            with open(record) as f:
                found = json.load(f)
            if found != identity:
                differ = sorted(k for k in set(found) | set(identity)
                                if found.get(k) != identity.get(k))
                raise ValueError(f'{folder} holds samples of another run (different {differ}): '
                                 f'rerun with the same arguments or delete the folder')
        else:
            os.makedirs(folder, exist_ok=True)
            with open(record, 'w') as f:
                json.dump(identity, f, indent=1)

    def path(self, index: int) -> str:
        return osp.join(self.folder, f'chunk_{index:05d}.npz')

    def finished(self, index: int) -> bool:
        return osp.isfile(self.path(index))

    def save(self, index: int, images: np.ndarray, labels: np.ndarray) -> None:
        tmp = self.path(index) + '.tmp.npz'
        np.savez(tmp, images=images, labels=labels)
        os.replace(tmp, self.path(index))  # a chunk file exists only when complete

    def load(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        with np.load(self.path(index)) as chunk:
            return chunk['images'], chunk['labels']

    def remove(self) -> None:
        shutil.rmtree(self.folder)


def draw_own_chunks(model, labels: torch.Tensor, num_steps: int, seed: int, batch_size: int,
                    partial: PartialSamples, rank: int = 0, world_size: int = 1,
                    **sampling) -> int:
    """Draws this process's chunks of ``labels`` that ``partial`` does not hold yet and saves them
    there; returns how many chunks were already there. Process ``rank`` of ``world_size`` draws
    chunks rank, rank + world_size, ...; process 0 shows the progress of all (they advance in
    rounds of ``world_size`` chunks). ``sampling``: sampler, eta, guidance_scale."""
    chunks: List[torch.Tensor] = list(labels.split(batch_size))
    found = sum(partial.finished(index) for index in range(len(chunks)))
    progress = ProgressBar(len(labels)) if rank == 0 else None
    for round_start in range(0, len(chunks), world_size):
        index = round_start + rank
        if index < len(chunks) and not partial.finished(index):
            images, drawn = model.sample_classes(chunks[index].tolist(), 1, num_steps,
                                                 chunk_seed(seed, index), None, **sampling)
            partial.save(index, to_uint8_nhwc(images), drawn.numpy())
        if progress is not None:
            progress.update(sum(len(c) for c in chunks[round_start:round_start + world_size]))
    if progress is not None:
        sys.stdout.write('\n')
    return found


def collect_chunks(partial: PartialSamples, num_chunks: int) -> Tuple[np.ndarray, np.ndarray]:
    """All chunks, in order: uint8 [N, H, W, C] images and [N] labels."""
    missing = [index for index in range(num_chunks) if not partial.finished(index)]
    if missing:
        raise FileNotFoundError(f'{partial.folder}: chunks {missing} of {num_chunks} are missing '
                                '(a process stopped early?); rerun the same command to draw them')
    parts = [partial.load(index) for index in range(num_chunks)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def draw_samples(model, labels: torch.Tensor, num_steps: int, seed: int, batch_size: int,
                 partial: PartialSamples, **sampling) -> Tuple[np.ndarray, np.ndarray]:
    """uint8 [N, H, W, C] samples of ``labels`` and the labels, chunk by chunk in one process,
    skipping the chunks ``partial`` already holds; ``sampling``: sampler, eta, guidance_scale."""
    draw_own_chunks(model, labels, num_steps, seed, batch_size, partial, **sampling)
    return collect_chunks(partial, len(labels.split(batch_size)))


def main(argv=None):
    args = parse_args(argv)
    if args.launcher != 'none':
        init_dist(args.launcher)
    rank, world_size = get_dist_info()
    device = args.device
    if device == 'cuda' and world_size > 1:
        device = f'cuda:{int(os.environ.get("LOCAL_RANK", args.local_rank))}'
    model = init_model(args.config, args.checkpoint, device, args.cfg_options)
    if not hasattr(model, 'sample_classes'):
        raise TypeError(f'{args.config}: model {type(model).__name__} cannot sample; '
                        'tools/sample.py needs a genrep.GenRep model')
    num_classes = model.denoiser.num_classes
    if args.unconditional:
        classes = [model.denoiser.null_class_id]
    else:
        classes = args.classes if args.classes is not None else list(range(num_classes))
        check_classes(classes, num_classes, args.config)

    stem = osp.splitext(args.out)[0]
    checkpoint = osp.abspath(args.checkpoint)
    identity = dict(config=osp.abspath(args.config), checkpoint=checkpoint,
                    checkpoint_bytes=osp.getsize(checkpoint),
                    checkpoint_mtime_ns=os.stat(checkpoint).st_mtime_ns,
                    cfg_options=json.loads(json.dumps(args.cfg_options or {}, default=str)),
                    classes=classes, per_class=args.per_class, steps=args.steps,
                    seed=args.seed, batch_size=args.batch_size, sampler=args.sampler,
                    eta=args.eta, guidance_scale=args.guidance_scale)
    # Process 0 checks or records the run first; the others then read its record.
    if rank == 0:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        partial = PartialSamples(stem + '.partial', identity)
    barrier()
    if rank != 0:
        partial = PartialSamples(stem + '.partial', identity)
    labels = torch.as_tensor(classes).long().repeat_interleave(args.per_class)
    found = draw_own_chunks(model, labels, args.steps, args.seed, args.batch_size, partial, rank,
                            world_size, sampler=args.sampler, eta=args.eta,
                            guidance_scale=args.guidance_scale)
    barrier()
    if rank != 0:
        return
    num_chunks = len(labels.split(args.batch_size))
    images, labels = collect_chunks(partial, num_chunks)

    np.savez(stem + '.npz', images, labels)  # arr_0, arr_1: the layout ADM's evaluator reads
    rows = min(args.grid_rows, args.per_class)
    keep = np.arange(len(labels)) % args.per_class < rows
    grid = torch.from_numpy(images[keep]).permute(0, 3, 1, 2).float() / 127.5 - 1
    sample_grid(grid, rows=rows).save(args.out)
    partial.remove()
    resumed = f', {found} of {num_chunks} chunks resumed' if found else ''
    print(f'{len(labels)} samples of classes {classes} ({args.steps} {args.sampler} steps, '
          f'guidance {args.guidance_scale}, {world_size} process(es){resumed}) -> '
          f'{stem}.npz, grid {args.out}')


if __name__ == '__main__':
    main()

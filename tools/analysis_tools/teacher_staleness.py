"""How stale may a cached teacher be? The drift of p(y|x) (Eq. 2-3) between checkpoints of a run.

``teacher_cache=dict(max_age=N)`` reuses an image's teacher for N iterations while the denoiser
trains on. This tool measures what that costs: on the same training images, with the same noise,
the teacher of an earlier checkpoint (stale) against that of a later one (fresh), beside a second
noise draw of the fresh teacher. A stale teacher is harmless while its drift from the fresh one,
KL(fresh || stale), stays within the fresh teacher's own draw-to-draw spread, KL(fresh || fresh'):
a cached posterior is then as good a sample of the teacher as a new estimate. Posteriors at the
config's temperature, over all classes.

    python tools/analysis_tools/teacher_staleness.py CONFIG OLD_CKPT NEW_CKPT [--num-images 256]
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import torch
from mmengine.config import DictAction

from genrep.apis import init_model
from genrep.apis.teacher import mean_kl, split_image_indices, teacher_log_likelihoods
from genrep.diffusion.posteriors import bayes_posterior


def parse_args():
    parser = argparse.ArgumentParser(description='Drift of the GenRep teacher between checkpoints')
    parser.add_argument('config', help='config of a GenRep model with a posterior estimator')
    parser.add_argument('old_checkpoint', help='the earlier checkpoint (the stale teacher)')
    parser.add_argument('new_checkpoint', help='the later checkpoint (the fresh teacher)')
    parser.add_argument('--split', choices=['train', 'test'], default='train',
                        help='images to estimate on (the cache holds training images)')
    parser.add_argument('--num-images', type=int, default=256)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0,
                        help='picks the images and the shared noise; seed + 1 is the second draw')
    parser.add_argument('--out', help='also write the results as JSON here')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args()


def compare(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """KL(reference || other) and the share of images whose argmax agree."""
    return dict(kl=mean_kl(reference, other),
                agreement=(reference.argmax(1) == other.argmax(1)).float().mean().item())


def main():
    args = parse_args()
    posteriors, dataset, indices = {}, None, None
    # Each checkpoint loaded once (one model in memory at a time); the images are the config's.
    for checkpoint, draws in [(args.old_checkpoint, [('stale', args.seed)]),
                              (args.new_checkpoint, [('fresh', args.seed),
                                                     ('fresh_redraw', args.seed + 1)])]:
        model = init_model(args.config, checkpoint, args.device, args.cfg_options)
        if dataset is None:
            dataset, indices = split_image_indices(model, args.split, args.num_images, args.seed)
        for name, noise_seed in draws:
            estimates = teacher_log_likelihoods(model, dataset, indices, args.batch_size,
                                                noise_seed, verbose=False)
            posteriors[name] = bayes_posterior(estimates['log_lik'],
                                               model.posterior.temperature)
            print(f'{name}: {checkpoint}, noise seed {noise_seed}', flush=True)
        del model
    labels = estimates['labels']

    fresh = posteriors['fresh']
    result = dict(
        images=len(labels),
        split=args.split,
        top1={name: (p.argmax(1) == labels).float().mean().item() * 100
              for name, p in posteriors.items()},
        drift=compare(fresh, posteriors['stale']),
        redraw=compare(fresh, posteriors['fresh_redraw']))
    ratio = result['drift']['kl'] / max(result['redraw']['kl'], 1e-12)
    result['drift_over_redraw'] = ratio
    print(f'{result["images"]} {args.split} images; teacher top-1 '
          + ', '.join(f'{name} {top1:.2f}%' for name, top1 in result['top1'].items()))
    print(f'drift  KL(fresh || stale)   {result["drift"]["kl"]:.4f}  argmax agreement '
          f'{result["drift"]["agreement"]:.3f}')
    print(f'redraw KL(fresh || fresh\')  {result["redraw"]["kl"]:.4f}  argmax agreement '
          f'{result["redraw"]["agreement"]:.3f}')
    verdict = 'within' if ratio <= 1 else 'beyond'
    print(f'drift / redraw = {ratio:.2f}: the stale teacher is {verdict} the teacher\'s own noise')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()

"""The generative teacher p(y|x) (Eq. 2-3) on one image, beside the head's scores, with its cost.

    python tools/analysis_tools/posterior.py IMG CONFIG CHECKPOINT [--candidates 5] [--show 5]
        [--seed 0] [--out posterior.json] [--device cpu]

The image goes through the config's test pipeline (the task's inferencer, as demo/image_demo.py
reads it); the head predicts; the teacher estimates p(y|x) of the whole image over the head's top
``--candidates`` classes (all classes by default: the exact posterior) with the config's
estimator, temperature and reverse-step adjustment, as training's L_gen_distil does. Printed: the
``--show`` classes the teacher ranks highest with their teacher and head probabilities, the
denoiser evaluations the teacher spent (image x class rows through the denoiser) and its wall
time. The head's score of a dense model is its per-pixel softmax averaged over the image.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import torch

from genrep.apis import build_inferencer
from genrep.diffusion.cost import DenoiserCost
from genrep.diffusion.posteriors import restrict_posterior


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="The GenRep teacher's p(y|x) on one image")
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config of a GenRep model with a posterior estimator')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--candidates', type=int,
                        help="classes the teacher covers: the head's top ones (default: all)")
    parser.add_argument('--show', type=int, default=5, help='classes printed')
    parser.add_argument('--seed', type=int, default=0, help="the teacher's noise")
    parser.add_argument('--out', help='also write the result as JSON here')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    for name in ('candidates', 'show'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name} must be >= 1, got {value}')
    return args


def head_probabilities(sample) -> torch.Tensor:
    """The head's class probabilities of one prediction: [K]."""
    if 'pred_score' in sample:  # mmpretrain
        return sample.pred_score.float().cpu()
    if 'seg_logits' in sample:  # mmseg: the per-pixel softmax averaged over the image
        return sample.seg_logits.data.float().softmax(0).flatten(1).mean(1).cpu()
    raise ValueError(f'{type(sample).__name__}: the posterior tool reads image-level scores '
                     '(pred_score) or per-pixel logits (seg_logits)')


def teacher_posterior(model, inputs: torch.Tensor, class_ids: torch.Tensor, seed: int):
    """p(y|x) over ``class_ids`` [1, K] of the preprocessed image ``inputs`` [1, C, H, W], read
    as ``GenRep.generative_distillation`` reads it (encode, the reverse-step adjustment when the
    model has one); returns (probabilities [K], denoiser rows, seconds)."""
    estimator = model.posterior
    with torch.no_grad(), DenoiserCost(model.teacher_denoiser) as cost:
        x0 = model.backbone.encode(inputs)
        adjust = model.teacher_step_adjust()
        generator = torch.Generator(device=x0.device).manual_seed(seed)
        probs = estimator.posterior(model.teacher_denoiser, x0, class_ids, generator,
                                    adjust=adjust)
    return probs[0].cpu(), cost.evaluations, cost.seconds


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.image):
        raise FileNotFoundError(f'image {args.image!r} does not exist')
    inferencer = build_inferencer(args.config, args.checkpoint, args.device)
    model = inferencer.model
    if getattr(model, 'posterior', None) is None:
        raise ValueError(f'{args.config}: model.posterior is not set; the teacher needs a '
                         'genrep.GenRep model with a POSTERIORS estimator')
    captured = []
    hook = model.backbone.register_forward_pre_hook(lambda _m, a: captured.append(a[0]))
    sample = inferencer(args.image, return_datasamples=True)
    hook.remove()
    sample = sample['predictions'] if isinstance(sample, dict) else sample
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    head = head_probabilities(sample)

    num_classes = head.numel()
    count = num_classes if args.candidates is None else min(args.candidates, num_classes)
    class_ids = head.topk(count).indices.sort().values
    teacher, rows, seconds = teacher_posterior(model, captured[0], class_ids[None], args.seed)
    head_restricted = restrict_posterior(head[None], class_ids[None])[0]

    names = list(model.dataset_meta['classes'])
    order = teacher.argsort(descending=True)[:args.show]
    shown = [dict(name=names[class_ids[i]], index=int(class_ids[i]),
                  teacher=float(teacher[i]), head=float(head_restricted[i])) for i in order]
    result = dict(image=args.image, candidates=count, num_classes=num_classes,
                  denoiser_evaluations=rows, teacher_seconds=seconds,
                  estimator=type(model.posterior).__name__, classes=shown)
    print(f'\nteacher p(y|x) over {count} of {num_classes} classes '
          f'({result["estimator"]}): {rows} denoiser evaluations, {seconds:.2f} s')
    print(f'{"class":<24} {"teacher":>8} {"head":>8}')
    for row in shown:
        print(f'{row["name"][:24]:<24} {row["teacher"]:8.4f} {row["head"]:8.4f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()

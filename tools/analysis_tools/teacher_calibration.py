"""How good is the generative teacher p(y|x) (Eq. 2-3), and at which temperature is it calibrated?

Runs the config's posterior estimator in exact mode (all classes) on images of a split, and prints
its top-1, negative log-likelihood and ECE (15 bins) at several temperatures, the head's top-1 for
reference, and the temperature that minimises the teacher's NLL (temperature scaling, Guo et al.
2017) -- the value to put in ``model.posterior.temperature`` so that L_gen_distil (Eq. 4) distils
a calibrated teacher rather than an over- or under-confident one.

    python tools/analysis_tools/teacher_calibration.py CONFIG CHECKPOINT [--num-images 512]
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import torch
from mmengine.config import DictAction
from torchmetrics.functional.classification import multiclass_calibration_error

from genrep.apis import init_model
from genrep.apis.teacher import (fit_temperature, split_image_indices, teacher_log_likelihoods,
                                  temperature_nll)


def parse_args():
    parser = argparse.ArgumentParser(description='Accuracy and calibration of the GenRep teacher')
    parser.add_argument('config', help='config of a GenRep model with a posterior estimator')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--split', choices=['train', 'test'], default='train',
                        help='the dataloader whose dataset to read (train: fit on training data)')
    parser.add_argument('--num-images', type=int, default=512)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--temperatures', type=float, nargs='+',
                        default=[0.002, 0.005, 0.01, 0.02, 0.05, 0.1])
    parser.add_argument('--seed', type=int, default=0, help='picks the images and the noise')
    parser.add_argument('--out', help='also write the results as JSON here')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args()


def main():
    args = parse_args()
    model = init_model(args.config, args.checkpoint, args.device, args.cfg_options)
    dataset, indices = split_image_indices(model, args.split, args.num_images, args.seed)
    count = len(indices)
    estimates = teacher_log_likelihoods(model, dataset, indices, args.batch_size, args.seed,
                                        head_logits=True)
    log_lik, logits, labels = estimates['log_lik'], estimates['logits'], estimates['labels']
    num_classes = log_lik.shape[1]

    fitted = fit_temperature(log_lik, labels, candidates=args.temperatures)
    rows = []
    for tau in sorted(set(args.temperatures) | {fitted}):
        probs = torch.softmax(log_lik / tau, dim=1)
        rows.append(
            dict(
                temperature=tau,
                nll=temperature_nll(log_lik, labels, tau),
                ece=multiclass_calibration_error(probs, labels, num_classes, n_bins=15).item(),
                confidence=probs.max(1).values.mean().item()))
    result = dict(
        images=count,
        split=args.split,
        teacher_top1=(log_lik.argmax(1) == labels).float().mean().item() * 100,
        head_top1=(logits.argmax(1) == labels).float().mean().item() * 100,
        fitted_temperature=fitted,
        rows=rows)

    print(f'{count} {args.split} images: teacher top-1 {result["teacher_top1"]:.2f}%, '
          f'head top-1 {result["head_top1"]:.2f}% (uniform NLL '
          f'{torch.log(torch.tensor(float(num_classes))).item():.3f})')
    print(f'{"temperature":>12} {"NLL":>8} {"ECE":>7} {"mean conf":>10}')
    for row in rows:
        mark = '  <- NLL-fitted' if row['temperature'] == fitted else ''
        print(f'{row["temperature"]:12.4g} {row["nll"]:8.3f} {row["ece"]:7.4f} '
              f'{row["confidence"]:10.3f}{mark}')
    print(f'set model.posterior.temperature={fitted:.4g} for a calibrated teacher')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()

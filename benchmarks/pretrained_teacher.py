"""How good is a pretrained Fashion-MNIST denoiser as GenRep's teacher and as a generator?

Reads a denoiser (the diffusers folder that `make pretrain` exports, or any GenRep checkpoint of
the main job's model) into the main job's stage-1 model and prints, on the test images:

* the posterior p(y|x) (Eq. 2-3) over all ten classes at several budgets of denoiser evaluations
  per class: the main job's own teacher setting (Li et al.'s denoising error at 20 timesteps) and
  the same reading at 100 and 500 (or the forward-noised reading at 20, 100, 500 evaluations or
  at other kept steps: ``--budgets``). Top-1, and
  ECE (15 bins) and NLL at the temperature fitted (NLL) on training images, a split apart from
  the test images it is scored on;
* class-conditional samples, unguided and at the test's guidance: CAS (the feature net of
  tools/analysis_tools/train_feature_net.py), and FID / precision / recall in ImageNet MobileNetV2
  space against a seeded 2,000 training images, beside the floor: the same metrics of real test
  images, as many as samples, against the same 2,000.

    python benchmarks/pretrained_teacher.py [--denoiser checkpoints/fmnist_denoiser]
        [--checkpoint CKPT] [--num-images 1000] [--budgets main error:100 error:500 20 T,m,k]
        [--per-class 100] [--out work_dirs/benchmarks/pretrained_teacher.json]
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401,E402  (applies genrep.compat before any OpenMMLab import)
import torch  # noqa: E402
from torchmetrics.functional.classification import multiclass_calibration_error  # noqa: E402

from genrep.apis import init_model  # noqa: E402
from genrep.apis.teacher import (fit_temperature, split_image_indices,  # noqa: E402
                                  teacher_log_likelihoods, temperature_nll)
from genrep.evaluation.metrics.generation import GenerationMetric  # noqa: E402

CONFIG = 'configs/genrep/fmnist_genrep_stage1.py'
SCHEDULER = dict(num_train_timesteps=1000, beta_schedule='linear', variance_type='learned_range',
                 clip_sample=True)
# Forward-noised components (the estimator's default reading), uniform weights, antithetic pairs:
# (T', m, k) giving ceil((T' - m) / k) evaluations per class.
FORWARD_BUDGETS = {20: (50, 10, 2), 100: (250, 50, 2), 500: (1000, 0, 2)}


def posterior_options(budget: str) -> dict:
    """``--cfg-options`` of the teacher at ``budget``: 'main' (the config's own), a count of
    evaluations per class of :data:`FORWARD_BUDGETS`, 'T,m,k' (the forward-noised reading's
    kept steps: a T-step schedule, the first m skipped, every k-th kept), or 'error:T' (Li et
    al.'s denoising error at T evenly spaced timesteps, one noise draw each, shared by the
    classes: T evaluations a class)."""
    if budget == 'main':
        return {}
    if budget.startswith('error:'):  # Li et al.'s denoising error at T' uniform timesteps
        return {'model.posterior': dict(
            _delete_=True, type='DenoisingErrorPosterior',
            schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER,
                          num_inference_steps=int(budget[len('error:'):])),
            weighting='uniform', num_noise=1, temperature=1.0)}
    if ',' in budget:
        steps, burn_in, thinning = (int(v) for v in budget.split(','))
    else:
        steps, burn_in, thinning = FORWARD_BUDGETS[int(budget)]
    return {'model.posterior': dict(
        _delete_=True, type='ReverseChainPosterior',
        schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER,
                      num_inference_steps=steps),
        components='forward', combine='uniform', antithetic=True, strength=1.0,
        burn_in=burn_in, thinning=thinning, temperature=1.0)}


def denoiser_options(folder: str) -> dict:
    return {'model.perception.backbone.denoiser': dict(
        _delete_=True, type='UNet2DDenoiser', pretrained=folder)}


def posterior_scores(model, num_images: int, num_fit: int, seed: int) -> dict:
    """Top-1 on ``num_images`` test images; ECE and NLL there at the temperature fitted on
    ``num_fit`` training images."""
    train_set, train_idx = split_image_indices(model, 'train', num_fit, seed)
    test_set, test_idx = split_image_indices(model, 'test', num_images, seed)
    fit = teacher_log_likelihoods(model, train_set, train_idx, noise_seed=seed, verbose=False)
    test = teacher_log_likelihoods(model, test_set, test_idx, noise_seed=seed + 1, verbose=False)
    tau = fit_temperature(fit['log_lik'], fit['labels'], lowest=-6, highest=2)
    probs = torch.softmax(test['log_lik'] / tau, dim=1)
    return dict(
        evaluations=model.posterior.num_evaluations(),
        top1=100.0 * (probs.argmax(1) == test['labels']).float().mean().item(),
        ece=multiclass_calibration_error(probs, test['labels'], num_classes=probs.shape[1],
                                         n_bins=15, norm='l1').item(),
        nll=temperature_nll(test['log_lik'], test['labels'], tau),
        temperature=tau)


def generation_metric(feature_net: str, num_real: int) -> GenerationMetric:
    return GenerationMetric(features='mobilenet_v2', feature_net=feature_net, cas=True,
                            num_real=num_real, prc_num_real=num_real)


def score_images(metric: GenerationMetric, images: torch.Tensor, labels: torch.Tensor) -> dict:
    metric.results.clear()
    metric.process(None, [dict(fake_img=img, gt_label=int(y)) for img, y in zip(images, labels)])
    return metric.compute_metrics(metric.results)


def real_test_images(model, count: int, seed: int):
    """``count`` real test images (uint8, as the test pipeline reads them) and their labels."""
    dataset, indices = split_image_indices(model, 'test', count, seed)
    images, labels = [], []
    for i in indices:
        item = dataset[i]
        images.append(item['inputs'])
        labels.append(int(item['data_samples'].gt_label))
    return torch.stack(images), torch.tensor(labels)


def main():
    parser = argparse.ArgumentParser(description='A pretrained denoiser as teacher and generator')
    parser.add_argument('--denoiser', default='checkpoints/fmnist_denoiser',
                        help='diffusers folder of the denoiser (`make pretrain`)')
    parser.add_argument('--checkpoint', help='a GenRep checkpoint instead of --denoiser')
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--num-images', type=int, default=1000, help='test images scored')
    parser.add_argument('--num-fit', type=int, default=500,
                        help='training images the temperature is fitted on')
    parser.add_argument('--budgets', nargs='+', default=['main', 'error:100', 'error:500'])
    parser.add_argument('--per-class', type=int, default=100, help='samples per class (0: none)')
    parser.add_argument('--steps', type=int, default=50, help='respaced sampling steps')
    parser.add_argument('--guidance', type=float, default=5.0, help="the test's guidance scale")
    parser.add_argument('--num-real', type=int, default=2000)
    parser.add_argument('--feature-net', default='work_dirs/feature_net/fmnist_feature_net.pth')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default='work_dirs/benchmarks/pretrained_teacher.json')
    args = parser.parse_args()

    weights = {} if args.checkpoint else denoiser_options(args.denoiser)
    results = dict(denoiser=args.checkpoint or args.denoiser, posterior={}, samples={})
    print('| teacher | evaluations / class | top-1 | ECE | NLL | tau |\n|---|---:|---:|---:|---:|---:|')
    for budget in args.budgets:
        model = init_model(args.config, args.checkpoint,
                           cfg_options={**weights, **posterior_options(budget)})
        scores = posterior_scores(model, args.num_images, args.num_fit, args.seed)
        results['posterior'][budget] = scores
        print(f"| {budget} | {scores['evaluations']} | {scores['top1']:.2f} | "
              f"{scores['ece']:.4f} | {scores['nll']:.4f} | {scores['temperature']:.3g} |",
              flush=True)

    if args.per_class:
        metric = generation_metric(args.feature_net, args.num_real)
        rows = {}
        real, real_labels = real_test_images(model, 10 * args.per_class, args.seed)
        rows['real test images (floor)'] = score_images(metric, real, real_labels)
        for scale in (1.0, args.guidance):
            images, labels = model.sample_classes(range(10), args.per_class, args.steps,
                                                  seed=args.seed, batch_size=250,
                                                  guidance_scale=scale)
            rows[f'samples, guidance {scale:g}'] = score_images(metric, images, labels)
        results['samples'] = rows
        print('\n| images | CAS | FID (MobileNetV2) | FID / floor | precision | recall |\n'
              '|---|---:|---:|---:|---:|---:|')
        floor = rows['real test images (floor)']['fid_mobilenet_v2']
        for name, row in rows.items():
            print(f"| {name} | {row['cas']:.3f} | {row['fid_mobilenet_v2']:.2f} | "
                  f"{row['fid_mobilenet_v2'] / floor:.2f} | {row['precision_mobilenet_v2']:.3f} | "
                  f"{row['recall_mobilenet_v2']:.3f} |")
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()

"""The teacher's estimates on the images of a dataset split, how two posteriors differ, and the
temperature that calibrates a teacher, for the analysis tools
(``tools/analysis_tools/teacher_calibration.py``, ``teacher_staleness.py``) and the benchmarks
(``benchmarks/teacher.py``, ``pretrained_teacher.py``)."""
from typing import Dict, List, Sequence

import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS
from torch import Tensor


def split_image_indices(model, split: str, num_images: int, seed: int):
    """The dataset of ``split`` ('train' or 'test', with the test pipeline: no augmentation) of
    ``model.cfg`` and ``num_images`` of its indices drawn by ``seed``."""
    cfg = model.cfg
    dataset_cfg = cfg[f'{split}_dataloader'].dataset.copy()
    dataset_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    dataset = DATASETS.build(dataset_cfg)
    generator = torch.Generator().manual_seed(seed)
    count = min(num_images, len(dataset))
    return dataset, torch.randperm(len(dataset), generator=generator)[:count].tolist()


@torch.no_grad()
def teacher_log_likelihoods(model, dataset, indices: List[int], batch_size: int = 64,
                            noise_seed: int = 0, verbose: bool = True,
                            head_logits: bool = False) -> Dict[str, Tensor]:
    """The posterior estimator's normalised log p(x|y) over all classes (Eq. 2) for the images
    ``indices`` of ``dataset`` as training reads it (the teacher's weights, the reverse-step
    adjustment of a stage-2 model), its noise from one generator seeded ``noise_seed``, and the
    labels: ``dict(log_lik=[N, K], labels=[N])``, with the head's ``logits`` [N, K] too where
    ``head_logits``."""
    if getattr(model, 'posterior', None) is None:
        raise ValueError(f'{model.cfg.filename}: model.posterior is not set; the teacher needs a '
                         'POSTERIORS estimator (e.g. ReverseChainPosterior)')
    device = next(model.parameters()).device
    noise = torch.Generator(device=device).manual_seed(noise_seed)
    adjust = model.teacher_step_adjust()  # as GenRep.generative_distillation reads it
    log_liks, logits, labels = [], [], []
    for start in range(0, len(indices), batch_size):
        batch = pseudo_collate([dataset[i] for i in indices[start:start + batch_size]])
        data = model.data_preprocessor(batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        if head_logits:
            logits.append(model.perception.head(model.perception.extract_feat(inputs)).cpu())
        x0 = model.backbone.encode(inputs)
        log_liks.append(model.posterior.log_likelihood(
            model.teacher_denoiser, x0, None, noise, adjust=adjust).cpu())
        labels.append(torch.cat([s.gt_label for s in samples]).cpu())
        if verbose:
            print(f'{start + len(samples)}/{len(indices)} images', flush=True)
    result = dict(log_lik=torch.cat(log_liks), labels=torch.cat(labels))
    if head_logits:
        result['logits'] = torch.cat(logits)
    return result


def mean_kl(p: Tensor, q: Tensor) -> float:
    """Mean over rows of KL(p || q) between categorical distributions, classes on dim 1."""
    return (p * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum(1).mean().item()


def temperature_nll(log_lik: Tensor, labels: Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under softmax(log p(x|y) / temperature)."""
    log_p = torch.log_softmax(log_lik / temperature, dim=1)
    return -log_p.gather(1, labels[:, None]).mean().item()


def fit_temperature(log_lik: Tensor, labels: Tensor, lowest: int = -4, highest: int = 3,
                    candidates: Sequence[float] = ()) -> float:
    """The temperature minimising :func:`temperature_nll` (temperature scaling, Guo et al. 2017)
    on a log grid of 40 points a decade from 10^lowest to 10^highest, and ``candidates``. NLL is
    convex in 1 / tau, so the grid minimum is within one grid step of the optimum; a candidate off
    the grid that is nearer wins."""
    grid = torch.logspace(lowest, highest, 40 * (highest - lowest) + 1).tolist() + list(candidates)
    return min(grid, key=lambda tau: temperature_nll(log_lik, labels, tau))

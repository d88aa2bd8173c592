"""The teacher side of generative distillation (Eq. 2-4) at any task granularity.

Given the student's scores (:class:`genrep.models.tasks.StudentScores`) of the images that get a
teacher, :func:`distillation_targets` chooses the candidate classes, asks the posterior estimator
for p(y|x) over them at the student's granularity and says where the KL counts:

* image: p(y|x) [n, K] from the image-level estimate; candidates: the true class plus the head's
  top ``num_candidates`` (``candidate_classes``).
* dense: p(y|x_loc) [n, K, h, w] from the dense estimate on the denoiser's grid (h, w); candidates
  per image: the classes present in its label map (largest area first), then the head's top mean
  scores, K = ``num_candidates`` in all; the KL counts where the label map, resized (nearest) to
  the grid, is valid.
* region: the dense log-likelihood averaged inside each region (RoIAlign over the [n, K, h, w]
  map), then Bayes (Eq. 3): a region's pixels are treated as one observation; candidates per
  image as for dense, from the classes of its valid regions (a detector's matched proposals;
  its negatives carry no class), then the head's summed region scores.

:func:`distillation_avg_factor` weights the KL so that a distilled image counts as much as one
image of the task loss: the weighted KL of the n distilled images is summed and divided by the
total weight scaled to the whole batch (valid count x B / n), so distilling a subset of the batch
(a budget) neither inflates each distilled image's weight nor changes with n.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmengine.dist import get_dist_info, get_world_size
from torch import Tensor
from torchvision.ops import roi_align

from genrep.diffusion.posteriors import bayes_posterior, candidate_classes
from .tasks import StudentScores
from .teacher_cache import TeacherCache, cached_posterior


@dataclass
class DistillationTargets:
    """Inputs of ``GenerativeDistillationLoss`` for the distilled images.

    Attributes:
        teacher: p(y|x) over the candidates, [n, K], [n, K, h, w] or [R, K].
        logits: the student's logits, [n, N], [n, N, H, W] or [R, N].
        candidates: class ids of the teacher's K columns, [n, K] or [R, K].
        weight: where the KL counts, the teacher's shape without K (float 0/1).
    """
    teacher: Tensor
    logits: Tensor
    candidates: Tensor
    weight: Tensor


def present_class_candidates(scores: Tensor, labels: Tensor, valid: Tensor, k: int) -> Tensor:
    """K = ``k`` candidate classes per image: those present in its labels (largest count first),
    then the top ``scores``.

    Args:
        scores: [n, N] the head's image-level class scores (e.g. mean logits over locations).
        labels: [n, ...] class ids (a label map, or the classes of an image's regions).
        valid: bool, the shape of ``labels``: which labels count.
        k: K, at most N.

    Returns:
        [n, K] distinct class ids.
    """
    num_classes = scores.shape[1]
    if not 0 < k <= num_classes:
        raise ValueError(f'distillation: num_candidates must be in [1, {num_classes}], got {k}')
    flat = torch.where(valid, labels, torch.full_like(labels, num_classes)).flatten(1).long()
    counts = torch.zeros(flat.shape[0], num_classes + 1, device=scores.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat, dtype=counts.dtype))
    counts = counts[:, :num_classes]
    # Present classes outrank every score; among them the larger area first.
    probs = scores.detach().float().softmax(dim=1)
    key = torch.where(counts > 0, 2.0 + counts / counts.sum(1, keepdim=True).clamp_min(1), probs)
    return key.topk(k, dim=1).indices


def pool_regions(dense: Tensor, rois: Tensor, spatial_scale: float) -> Tensor:
    """Average of a dense map [n, K, h, w] inside each region, [R, 5] (image index, x1, y1, x2,
    y2) in input pixels -> [R, K] (RoIAlign with a 1x1 output and one bilinear sample per grid
    cell the region spans, so a region on cell boundaries pools exactly its cells' mean)."""
    pooled = roi_align(dense.float(), rois.float(), output_size=1, spatial_scale=spatial_scale,
                       sampling_ratio=0, aligned=True)
    return pooled.flatten(1)


def distillation_targets(posterior,
                         denoiser,
                         latents: Tensor,
                         scores: StudentScores,
                         num_candidates: Optional[int],
                         input_size,
                         cache: Optional[TeacherCache] = None,
                         cache_keys: Optional[Sequence[int]] = None,
                         iteration: int = 0,
                         **estimator_kwargs) -> DistillationTargets:
    """The teacher p(y|x) (Eq. 2-3) of the ``latents`` [n, C, h, w] at the granularity of the
    student ``scores`` (restricted to those n images), with candidates and KL weights.

    Args:
        posterior: a ``PosteriorEstimator``.
        denoiser: the shared denoiser (no gradient flows: the estimators run under no_grad).
        latents: what the denoiser reads for the n distilled images.
        scores: the student's scores, already restricted to the n images (regions of them).
        num_candidates: K budget, see the module docstring; ``None``: all classes.
        input_size: (H, W) of the input images (region coordinates are in these pixels).
        cache: a :class:`TeacherCache` (image granularity only), read and filled with the images'
            ``cache_keys`` (dataset indices) at training ``iteration``; ``None``: no cache.
        estimator_kwargs: passed to the estimator (e.g. ``adjust``, ``generator``).
    """
    logits = scores.logits
    num_classes = logits.shape[1]
    weight = scores.valid.float()
    if scores.granularity == 'image':
        candidates = (candidate_classes(logits.detach(), num_candidates, scores.labels)
                      if num_candidates is not None else
                      torch.arange(num_classes, device=logits.device).expand(len(logits), -1))
        if cache is None:
            teacher = posterior.posterior(denoiser, latents, candidates, **estimator_kwargs)
        else:
            teacher = cached_posterior(posterior, denoiser, latents, candidates, cache,
                                       cache_keys, iteration, **estimator_kwargs)
        return DistillationTargets(teacher, logits, candidates, weight)

    if cache is not None:
        raise ValueError(f'GenRep: teacher_cache serves image-level teachers; this task\'s '
                         f'student scores are {scores.granularity!r}')

    k = num_candidates if num_candidates is not None else num_classes
    if scores.granularity == 'dense':
        image_scores = logits.detach().flatten(2).mean(2)
        candidates = present_class_candidates(image_scores, scores.labels, scores.valid, k)
        teacher = posterior.posterior(denoiser, latents, candidates, dense=True,
                                      **estimator_kwargs)
        grid = teacher.shape[-2:]
        weight = F.interpolate(weight[:, None], size=grid, mode='nearest')[:, 0]
        return DistillationTargets(teacher, logits, candidates, weight)

    # region: candidates per image from the classes of its regions, then the head's scores.
    image_index = scores.rois[:, 0].long()
    n = latents.shape[0]
    per_image = torch.zeros(n, num_classes, device=logits.device)
    per_image.index_add_(0, image_index, logits.detach().float().softmax(1))
    region_labels = torch.full((n, len(image_index)), -1, device=logits.device, dtype=torch.long)
    valid = scores.valid.bool()  # only valid regions' classes count as present
    region_labels[image_index[valid], torch.arange(len(image_index), device=logits.device)[valid]] \
        = scores.labels.long()[valid]
    image_candidates = present_class_candidates(per_image, region_labels.clamp_min(0),
                                                region_labels >= 0, k)
    log_lik = posterior.dense_log_likelihood(denoiser, latents, image_candidates,
                                             **estimator_kwargs)
    scale = log_lik.shape[-1] / input_size[-1]
    teacher = bayes_posterior(pool_regions(log_lik, scores.rois, scale), posterior.temperature)
    return DistillationTargets(teacher, logits, image_candidates[image_index], weight)


def distillation_avg_factor(weight: Tensor, num_distilled: int, batch_size: int) -> Tensor:
    """Divisor of the summed, weighted KL: the distilled images' total weight scaled to the batch
    (x B / n), so that each distilled image counts as one image of the task loss (Eq. 5 per
    image) whatever the budget n.

    Under data parallelism the weight, n and B are those of the global batch (summed over the W
    processes, one ``all_reduce``; every process must call this each step) and the divisor is
    divided by W: DDP averages the W processes' gradients, so the average of their losses is then
    the single-process loss of the global batch (the ``reduce_mean`` of mmdet's avg factors)."""
    world_size = get_world_size()
    if world_size == 1:
        return weight.sum() * (batch_size / max(num_distilled, 1))
    totals = torch.stack([weight.sum().float(),
                          weight.new_tensor(float(num_distilled), dtype=torch.float32),
                          weight.new_tensor(float(batch_size), dtype=torch.float32)])
    dist.all_reduce(totals)
    total_weight, total_distilled, total_batch = totals
    return total_weight * (total_batch / total_distilled.clamp_min(1)) / world_size


def local_share(budget: Optional[int], batch: int) -> int:
    """How many of this process's ``batch`` images are among the first ``budget`` images of the
    global batch (``None``: all). mmengine's samplers (DefaultSampler, InfiniteSampler) give rank
    r of W the images r, r + W, r + 2 W, ... of the global batch, so these are the first
    ceil((budget - r) / W) of the process's batch."""
    if budget is None:
        return batch
    rank, world_size = get_dist_info()
    return max(0, min(batch, -(-(budget - rank) // world_size)))


def first_images(scores: StudentScores, n: int) -> StudentScores:
    """The student's scores restricted to the first ``n`` images of the batch (a region's image
    is its RoI's batch index)."""
    if scores.granularity == 'region':
        keep = scores.rois[:, 0] < n
        return type(scores)(scores.granularity, scores.logits[keep], scores.labels[keep],
                            scores.valid[keep], scores.rois[keep])
    return type(scores)(scores.granularity, scores.logits[:n], scores.labels[:n],
                        scores.valid[:n])

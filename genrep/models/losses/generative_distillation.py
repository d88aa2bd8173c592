"""Generative distillation (Eq. 4): KL(p || q) from the generative posterior to the task head.

The teacher p(y|x) comes from a posterior estimator (``genrep.diffusion.posteriors``: Bayes on
log p(x|y), Eq. 2-3) and is given as *probabilities*, exactly what ``PosteriorEstimator.posterior``
returns; it is a target and receives no gradient. The student q(y|x) is the softmax of the task
head's logits z.

Candidate subsets. The estimator scores a budget of K candidate classes per image
(``candidate_ids`` [B, K], or [K] shared by the batch), so p is a distribution over those K. The
student is restricted to the same K classes and renormalised: log q = log_softmax over the gathered
logits. This equals ``restrict_posterior(softmax(z), ids)`` but is computed in log space.

Dense maps. A segmentation teacher is a map p [B, K, h, w] (h, w: the denoiser's latent grid)
and the head predicts z [B, C, H, W]. The logits are resized to the teacher's grid, bilinearly and
before the softmax (the mmseg habit of resizing logits to the target, never the target): the
teacher's probabilities stay exactly as estimated, and the KL is summed on the teacher's (usually
coarser) grid. Candidates are gathered before resizing (only K channels are interpolated);
interpolation acts per channel, so the order does not change the result.
"""
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from genrep.registry import MODELS

REDUCTIONS = ('mean', 'sum', 'none')


def candidate_logits(logits: Tensor, candidate_ids: Tensor) -> Tensor:
    """Logits of the candidate classes: z [B, C, *S] at ids [B, K] (or [K]) -> [B, K, *S]."""
    if candidate_ids.dim() == 1:
        candidate_ids = candidate_ids.unsqueeze(0).expand(logits.shape[0], -1)
    if candidate_ids.dim() != 2 or candidate_ids.shape[0] != logits.shape[0]:
        raise ValueError(f'generative distillation: candidate_ids must be [B, K] or [K] class '
                         f'indices with B={logits.shape[0]}, got shape '
                         f'{tuple(candidate_ids.shape)}')
    index = candidate_ids.long().reshape(*candidate_ids.shape, *([1] * (logits.dim() - 2)))
    return logits.gather(1, index.expand(-1, -1, *logits.shape[2:]))


def generative_distillation_kl(teacher_probs: Tensor,
                               logits: Tensor,
                               candidate_ids: Optional[Tensor] = None,
                               temperature: float = 1.0) -> Tensor:
    """Eq. 4 at each image (or location): KL(p || q) = sum_y p(y|x) (log p(y|x) - log q(y|x)).

    Args:
        teacher_probs: p(y|x), the generative posterior, [B, K] or dense [B, K, h, w]; sums to 1
            over dim 1. Detached here: the teacher receives no gradient.
        logits: the task head's logits z, [B, C] or dense [B, C, H, W]; dense logits are resized
            bilinearly to (h, w) when (H, W) differs.
        candidate_ids: the K classes of the teacher as indices into C, [B, K] or [K]; ``None`` when
            the teacher covers all classes (K == C). q is the softmax restricted to them and
            renormalised (log_softmax over the gathered logits).
        temperature: tau of the student only, q = softmax(z / tau); the teacher's temperature is the
            posterior estimator's (Eq. 3). The KL is not rescaled by tau^2.

    Returns:
        KL(p || q) per image [B], or per location [B, h, w], in float32; 0 log 0 counts as 0.
    """
    if teacher_probs.dim() not in (2, 4) or logits.dim() != teacher_probs.dim():
        raise ValueError(f'generative_distillation_kl: expected teacher [B, K] with logits [B, C], '
                         f'or dense teacher [B, K, h, w] with logits [B, C, H, W]; got teacher '
                         f'{tuple(teacher_probs.shape)} and logits {tuple(logits.shape)}')
    if teacher_probs.shape[0] != logits.shape[0]:
        raise ValueError(f'generative_distillation_kl: batch sizes differ, teacher '
                         f'{teacher_probs.shape[0]} vs logits {logits.shape[0]}')
    if candidate_ids is not None:
        logits = candidate_logits(logits, candidate_ids)
    if logits.shape[1] != teacher_probs.shape[1]:
        raise ValueError(f'generative_distillation_kl: the teacher has {teacher_probs.shape[1]} '
                         f'classes but the (candidate) logits have {logits.shape[1]}; pass the '
                         f"teacher's candidate_ids")
    if logits.dim() == 4 and logits.shape[-2:] != teacher_probs.shape[-2:]:
        logits = F.interpolate(
            logits, size=teacher_probs.shape[-2:], mode='bilinear', align_corners=False)
    log_q = F.log_softmax(logits.float() / temperature, dim=1)
    p = teacher_probs.detach().float()
    return (torch.xlogy(p, p) - p * log_q).sum(dim=1)


@MODELS.register_module()
class GenerativeDistillationLoss(nn.Module):
    """L_gen.distil (Eq. 4), the regulariser added to a task's discriminative loss in Eq. 5.

    Args:
        loss_weight: multiplies the loss.
        reduction: 'mean' (over images, and locations for dense maps; weighted mean when a weight is
            given), 'sum', or 'none' (the weighted KL per image [B] or location [B, h, w]).
        temperature: tau of the student's softmax, see :func:`generative_distillation_kl`.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean', temperature: float = 1.0):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f'GenerativeDistillationLoss: reduction={reduction!r}, expected one '
                             f'of {REDUCTIONS}')
        if temperature <= 0:
            raise ValueError(f'GenerativeDistillationLoss: temperature must be > 0, got '
                             f'{temperature}')
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.temperature = temperature

    def forward(self,
                teacher_probs: Tensor,
                logits: Tensor,
                candidate_ids: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """Weighted, reduced KL(p || q).

        Args:
            teacher_probs, logits, candidate_ids: see :func:`generative_distillation_kl`.
            weight: per image [B] or per teacher location [B, h, w] (a bool or 0/1 ignore mask, or
                real weights); 'mean' then divides by the total weight, so ignored locations do not
                dilute the average.
            avg_factor: the divisor of 'mean' instead (the mmdet convention, e.g. the number of
                positive regions); only with reduction 'mean'.
        """
        if avg_factor is not None and self.reduction != 'mean':
            raise ValueError(f"GenerativeDistillationLoss: avg_factor needs reduction='mean', "
                             f'got {self.reduction!r}')
        kl = generative_distillation_kl(teacher_probs, logits, candidate_ids, self.temperature)
        if weight is not None:
            if weight.shape != kl.shape:
                raise ValueError(f'GenerativeDistillationLoss: weight must have the shape of the '
                                 f'teacher without its class dim, {tuple(kl.shape)}, got '
                                 f'{tuple(weight.shape)}')
            weight = weight.to(kl.dtype)
            kl = kl * weight
        if self.reduction == 'none':
            return self.loss_weight * kl
        if self.reduction == 'sum':
            return self.loss_weight * kl.sum()
        if avg_factor is None:
            avg_factor = kl.numel() if weight is None else weight.sum()
        eps = torch.finfo(kl.dtype).eps
        return self.loss_weight * kl.sum() / torch.as_tensor(avg_factor, dtype=kl.dtype,
                                                             device=kl.device).clamp_min(eps)

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, reduction={self.reduction!r}, '
                f'temperature={self.temperature}')

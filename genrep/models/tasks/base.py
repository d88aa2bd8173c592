"""The task-adapter interface: how GenRep reads a task from a stock perception model.

GenRep names no task, no head method and no data-sample field. For each task an adapter, one small
registered class, runs the perception model's head ONCE on a batch and returns

* the task's own losses (what the toolkit's head computes: cross-entropy, mask losses, ...),
* the student's class scores that generative distillation (Eq. 4) pulls towards the teacher, at the
  task's granularity: one score vector per image, per location, or per region, with the labels
  that choose the candidate classes and a mask of what is valid,
* the class that conditions the generation branch on each image (Eq. 10), or the null class.

Everything else (the teacher p(y|x), candidates, the KL, its weighting, the generation loss) lives
once in the core (:mod:`genrep.models.distillation`, :mod:`genrep.models.objectives`).
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn

GRANULARITIES = ('image', 'dense', 'region')


@dataclass
class StudentScores:
    """The student's class scores q(y|x) of generative distillation (Eq. 4).

    Attributes:
        granularity: 'image', 'dense' or 'region'.
        logits: class logits over the N classes of the head: image [B, N]; dense [B, N, H, W]
            (any resolution: the core resizes them to the teacher's grid); region [R, N].
        labels: the true classes that choose candidates: image [B]; dense a label map [B, H', W'];
            region [R] (the class of each region's ground truth).
        valid: bool mask of the shape of ``labels``: where a label (and so a KL term) exists
            (ignore index, padding, background regions excluded).
        rois: region only, [R, 5] rows (image index, x1, y1, x2, y2) in input pixels: where the
            dense teacher is pooled (RoIAlign) for each region.
    """
    granularity: str
    logits: Tensor
    labels: Tensor
    valid: Tensor
    rois: Optional[Tensor] = None

    def __post_init__(self):
        if self.granularity not in GRANULARITIES:
            raise ValueError(f'StudentScores: granularity must be one of {GRANULARITIES}, got '
                             f'{self.granularity!r}')
        if self.valid.shape != self.labels.shape:
            raise ValueError(f'StudentScores: valid {tuple(self.valid.shape)} must have the shape '
                             f'of labels {tuple(self.labels.shape)}')
        if (self.granularity == 'region') != (self.rois is not None):
            raise ValueError('StudentScores: rois are given with, and only with, granularity '
                             "'region'")


@dataclass
class TaskOutput:
    """What one forward of the task head gives GenRep.

    Attributes:
        losses: the task's own loss terms by name (their sum is L_task of Eq. 5); entries whose
            name holds no 'loss' are logged, not optimised (the mm convention, e.g. accuracy).
        scores: the student's scores for distillation; ``None`` when not asked for.
    """
    losses: Dict[str, Tensor]
    scores: Optional[StudentScores] = None


class TaskAdapter(nn.Module):
    """Base class of task adapters (registered in ``genrep.registry.TASK_ADAPTERS``).

    An adapter holds no parameters of its own: the head is the stock model's. Subclasses set
    ``granularity`` and implement :meth:`forward_train`; :meth:`generation_labels` defaults to the
    null class (an unconditional generation branch) for tasks without one class per image.
    """
    granularity: str = 'image'

    def forward_train(self, model: nn.Module, inputs: Tensor, data_samples: Sequence,
                      with_scores: bool) -> TaskOutput:
        """The task losses of ``model`` on a batch and, when ``with_scores``, the student's scores,
        from one forward of its head.

        Args:
            model: the stock perception model (its backbone a ``genrep.DiffusionBackbone``).
            inputs: the preprocessed batch [B, C, H, W].
            data_samples: the toolkit's data samples of the batch.
            with_scores: whether distillation needs the scores.
        """
        raise NotImplementedError

    def generation_labels(self, data_samples: Sequence, null_class: int,
                          device: torch.device) -> Tensor:
        """[B] class ids that condition the generation branch on each image; the null class
        (unconditional) by default."""
        return torch.full((len(data_samples), ), null_class, dtype=torch.long, device=device)

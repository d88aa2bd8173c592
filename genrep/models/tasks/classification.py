"""Classification with an mmpretrain ``ImageClassifier``: one score vector per image."""
from typing import Sequence

import torch
from torch import Tensor, nn

from genrep.registry import TASK_ADAPTERS
from .base import StudentScores, TaskAdapter, TaskOutput


def gt_labels(data_samples: Sequence, device: torch.device) -> Tensor:
    """[B] ground-truth classes of mmpretrain ``DataSample``s (one label each)."""
    return torch.cat([s.gt_label.reshape(-1)[:1] for s in data_samples]).long().to(device)


@TASK_ADAPTERS.register_module()
class ClassificationAdapter(TaskAdapter):
    """mmpretrain ``ImageClassifier``: features -> neck -> head logits [B, N], the head's own loss
    on those logits (``ClsHead._get_loss``, what ``ClsHead.loss`` computes after its forward),
    the ground-truth class as the candidate label and as the generation condition."""
    granularity = 'image'

    def forward_train(self, model: nn.Module, inputs: Tensor, data_samples: Sequence,
                      with_scores: bool) -> TaskOutput:
        logits = model.head(model.extract_feat(inputs))
        losses = model.head._get_loss(logits, data_samples)
        if not with_scores:
            return TaskOutput(losses)
        return TaskOutput(losses, self.student_scores(logits, gt_labels(data_samples,
                                                                        logits.device)))

    def student_scores(self, logits: Tensor, labels: Tensor) -> StudentScores:
        """The head's logits [B, N] with the image classes [B] (a subclass whose head scores
        something else, e.g. every location, overrides this alone)."""
        return StudentScores('image', logits, labels, torch.ones_like(labels, dtype=torch.bool))

    def generation_labels(self, data_samples: Sequence, null_class: int,
                          device: torch.device) -> Tensor:
        return gt_labels(data_samples, device)

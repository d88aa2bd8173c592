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
        labels = gt_labels(data_samples, logits.device)
        valid = torch.ones_like(labels, dtype=torch.bool)
        return TaskOutput(losses, StudentScores('image', logits, labels, valid))

    def generation_labels(self, data_samples: Sequence, null_class: int,
                          device: torch.device) -> Tensor:
        return gt_labels(data_samples, device)

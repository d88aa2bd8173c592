"""The task adapter of PatchClsHead: dense student scores from one forward of the head."""
from typing import Sequence

import torch
from torch import Tensor, nn

from genrep.models.tasks import StudentScores, TaskAdapter, TaskOutput
from genrep.models.tasks.classification import gt_labels
from genrep.registry import TASK_ADAPTERS


@TASK_ADAPTERS.register_module()
class PatchClassificationAdapter(TaskAdapter):
    """An ``ImageClassifier`` with a ``PatchClsHead``: location logits [B, N, h, w]; every location
    carries the image's class, so the label map is the class broadcast over the logits' grid."""
    granularity = 'dense'

    def forward_train(self, model: nn.Module, inputs: Tensor, data_samples: Sequence,
                      with_scores: bool) -> TaskOutput:
        logits = model.head(model.extract_feat(inputs))
        losses = model.head._get_loss(logits, data_samples)
        if not with_scores:
            return TaskOutput(losses)
        labels = gt_labels(data_samples, logits.device)
        label_map = labels.view(-1, 1, 1).expand(-1, *logits.shape[-2:])
        valid = torch.ones_like(label_map, dtype=torch.bool)
        return TaskOutput(losses, StudentScores('dense', logits, label_map, valid))

    def generation_labels(self, data_samples: Sequence, null_class: int,
                          device: torch.device) -> Tensor:
        return gt_labels(data_samples, device)

"""The task adapter of PatchClsHead: dense student scores from one forward of the head."""
import torch
from torch import Tensor

from genrep.models.tasks import ClassificationAdapter, StudentScores
from genrep.registry import TASK_ADAPTERS


@TASK_ADAPTERS.register_module()
class PatchClassificationAdapter(ClassificationAdapter):
    """An ``ImageClassifier`` with a ``PatchClsHead``: the head's loss, one forward and the image
    class as the generation condition are the classification adapter's; only the student differs:
    location logits [B, N, h, w], every location carrying the image's class (the label map is the
    class broadcast over the logits' grid), so the distillation is dense."""
    granularity = 'dense'

    def student_scores(self, logits: Tensor, labels: Tensor) -> StudentScores:
        label_map = labels.view(-1, 1, 1).expand(-1, *logits.shape[-2:])
        return StudentScores('dense', logits, label_map, torch.ones_like(label_map,
                                                                         dtype=torch.bool))

"""PatchClsHead: an image classifier that classifies every location of a feature map.

A 1x1 convolution scores each location of the deepest feature map [B, C, h, w] -> [B, N, h, w];
training applies the cross-entropy of the image's class at every location, prediction averages the
location logits. A small stand-in for a dense task: it gives GenRep a dense student for the dense
generative distillation (Eq. 4 at each location) on an image-level dataset.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn


@MODELS.register_module()
class PatchClsHead(ClsHead):
    """Per-location classification.

    Args:
        num_classes: N.
        in_channels: C of the deepest feature map.
        kwargs: of mmpretrain's ``ClsHead`` (``loss``, ``topk``, ``init_cfg``).
    """

    def __init__(self, num_classes: int, in_channels: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, feats: Tuple[Tensor, ...]) -> Tensor:
        """Location logits [B, N, h, w] of the deepest feature map."""
        return self.conv(feats[-1])

    def _get_loss(self, cls_score: Tensor, data_samples: List[DataSample], **kwargs) -> dict:
        """Cross-entropy of the image's class at every location (mean over locations)."""
        labels = torch.cat([s.gt_label.reshape(-1)[:1] for s in data_samples]).to(cls_score.device)
        target = labels.view(-1, 1, 1).expand(-1, *cls_score.shape[-2:])
        return dict(loss=F.cross_entropy(cls_score, target))

    def predict(self, feats: Tuple[Tensor, ...],
                data_samples: Sequence[DataSample] = None) -> List[DataSample]:
        """Image predictions from the location logits averaged over locations."""
        return self._get_predictions(self(feats).mean(dim=(2, 3)), data_samples)

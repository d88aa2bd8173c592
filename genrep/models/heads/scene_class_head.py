"""An image-level class head for a dense model: the auxiliary head that generative distillation
reaches in a task without a class posterior of its own (depth).

mmseg's ``NYUDataset`` gives every image a ``category_id`` (its scene class, from the file name;
-1 when unknown) and mmseg's ``DepthEstimator`` runs an ``auxiliary_head`` in training with
``loss(inputs, data_samples, train_cfg)``: this head pools one feature level, classifies the scene
with a linear layer and takes the cross-entropy on the known ``category_id``. Its logits are the
student q(y|x) that ``genrep.DepthAdapter`` hands the teacher p(y|x) of the same denoiser.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from genrep.registry import MODELS


def category_ids(data_samples: Sequence, device: torch.device) -> Tensor:
    """[B] the ``category_id`` of each sample's metainfo (-1: unknown)."""
    ids = []
    for sample in data_samples:
        if 'category_id' not in sample.metainfo:
            raise KeyError("SceneClassHead: the data samples carry no 'category_id'; add it to "
                           "PackSegInputs' meta_keys (as mmseg's NYU pipelines do)")
        ids.append(int(sample.metainfo['category_id']))
    return torch.tensor(ids, dtype=torch.long, device=device)


@MODELS.register_module()
class SceneClassHead(BaseModule):
    """Global average pooling of one feature level, dropout, a linear classifier.

    Args:
        in_channels: channels of the pooled feature.
        num_classes: the dataset's scene classes.
        in_index: which of the input features to pool (default the coarsest).
        dropout_ratio: dropout before the classifier.
        loss_weight: weight of the cross-entropy.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 in_index: int = -1,
                 dropout_ratio: float = 0.1,
                 loss_weight: float = 1.0,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_index = in_index
        self.num_classes = num_classes
        self.loss_weight = loss_weight
        self.dropout = nn.Dropout(dropout_ratio)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Class logits [B, N]."""
        pooled = inputs[self.in_index].mean(dim=(2, 3))
        return self.fc(self.dropout(pooled))

    def loss_by_feat(self, logits: Tensor, data_samples: Sequence) -> dict:
        """Cross-entropy over the images whose class is known (0 when none is)."""
        labels = category_ids(data_samples, logits.device)
        known = labels >= 0
        loss = F.cross_entropy(logits, labels.clamp_min(0), reduction='none')
        loss = (loss * known).sum() / known.sum().clamp_min(1)
        return dict(loss_cls=self.loss_weight * loss)

    def loss(self, inputs: Sequence[Tensor], data_samples: Sequence, train_cfg=None) -> dict:
        """What mmseg's ``DepthEstimator`` calls on an auxiliary head in training."""
        return self.loss_by_feat(self(inputs), data_samples)

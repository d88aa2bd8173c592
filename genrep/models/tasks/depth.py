"""Monocular depth with an mmseg ``DepthEstimator``.

Depth has no class posterior: p(y|x) of Eq. 3 needs classes y that condition p(x|y). What this
adapter distils instead is the class posterior of the image's *scene* (NYUv2's 27 scene types,
mmseg's ``NYUDataset.category_id``; on the embedded scenes the class of the object nearest the
camera): the teacher reads the denoiser's scene-conditioned reverse steps, the student is an
auxiliary image-level head on the same features (``genrep.SceneClassHead``, the estimator's
``auxiliary_head``), and the generation branch is conditioned on the same scene class so that the
class tokens the teacher reads are trained. The depth head itself gets the shared features that
this distillation shapes, not a KL of its own.

Without an auxiliary head the adapter runs the depth head alone, and GenRep must have
``posterior=None`` (no generative distillation; generation, in stage 2, stays unconditional).
"""
from typing import Sequence

import torch
from torch import Tensor, nn

from genrep.registry import TASK_ADAPTERS
from ..heads.scene_class_head import category_ids
from .base import StudentScores, TaskAdapter, TaskOutput


def _add_prefix(losses: dict, prefix: str) -> dict:
    return {f'{prefix}.{name}': value for name, value in losses.items()}


@TASK_ADAPTERS.register_module()
class DepthAdapter(TaskAdapter):
    """mmseg ``DepthEstimator``: the decode head's depth losses; with an ``auxiliary_head`` (a
    ``SceneClassHead``) its cross-entropy and its scene logits as the image-level student.

    Args:
        generation_condition: 'scene' (each image's scene class conditions the generation branch;
            the null class where it is unknown) or 'null' (unconditional).
    """
    granularity = 'image'

    def __init__(self, generation_condition: str = 'scene'):
        super().__init__()
        if generation_condition not in ('scene', 'null'):
            raise ValueError("DepthAdapter: generation_condition must be 'scene' or 'null', got "
                             f'{generation_condition!r}')
        self.generation_condition = generation_condition

    def forward_train(self, model: nn.Module, inputs: Tensor, data_samples: Sequence,
                      with_scores: bool) -> TaskOutput:
        metas = [s.metainfo for s in data_samples]
        feats = model.extract_feat(inputs, metas)
        head = model.decode_head
        losses = _add_prefix(head.loss_by_feat(head(feats), data_samples), 'decode')
        aux = model.auxiliary_head if getattr(model, 'with_auxiliary_head', False) else None
        if aux is None:
            if with_scores:
                raise ValueError('DepthAdapter: generative distillation (model.posterior) needs '
                                 'a scene-class head as the DepthEstimator\'s auxiliary_head '
                                 '(genrep.SceneClassHead); set model.posterior=None without one')
            return TaskOutput(losses)
        logits = aux(feats)
        losses.update(_add_prefix(aux.loss_by_feat(logits, data_samples), 'aux'))
        if not with_scores:
            return TaskOutput(losses)
        labels = category_ids(data_samples, logits.device)
        valid = labels >= 0
        return TaskOutput(losses, StudentScores('image', logits, labels.clamp_min(0), valid))

    def generation_labels(self, data_samples: Sequence, null_class: int,
                          device: torch.device) -> Tensor:
        if self.generation_condition == 'null':
            return super().generation_labels(data_samples, null_class, device)
        labels = category_ids(data_samples, device)
        return torch.where(labels >= 0, labels, torch.full_like(labels, null_class))

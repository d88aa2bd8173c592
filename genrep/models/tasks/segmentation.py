"""Semantic segmentation with an mmseg ``EncoderDecoder``: one score vector per location.

Two kinds of decode head are read, each through its own mmseg methods, in one forward:

* per-pixel heads (``FPNHead``, ``UPerHead``, ... any ``BaseDecodeHead``): ``forward`` gives the
  logits [B, N, h, w] and ``loss_by_feat`` the losses, exactly what ``BaseDecodeHead.loss`` does;
* mask-classification heads (mmseg's ``Mask2FormerHead`` and ``MaskFormerHead``, paper A.4):
  ``forward`` gives per-query class scores and masks, ``loss_by_feat`` the matching losses, and the
  dense class scores are the head's own inference rule, sum_q softmax(cls_q)[:N] sigmoid(mask_q),
  whose log is the student's logit map (the KL renormalises over the candidates).

The label map is ``gt_sem_seg`` with the head's ``ignore_index`` (ADE's ``reduce_zero_label`` turns
the unlabelled 0 into 255 in the pipeline), so ignored pixels carry no distillation term.

The generation branch (Eq. 10) is conditioned on each image's dominant class, the labelled class
covering most pixels (:func:`dominant_class`), so that the class tokens the dense teacher reads
(p(x|y) for each candidate y) are trained by generation; ``generation_condition='null'`` keeps it
unconditional.
"""
from typing import Sequence

import torch
from mmengine.utils import is_list_of
from torch import Tensor, nn

from genrep.registry import TASK_ADAPTERS
from .base import StudentScores, TaskAdapter, TaskOutput


def _add_prefix(losses: dict, prefix: str) -> dict:
    return {f'{prefix}.{name}': value for name, value in losses.items()}


def mask_classification_scores(cls_scores: Tensor, mask_preds: Tensor) -> Tensor:
    """Dense class scores of a mask-classification head (Mask2Former's inference rule):
    cls [B, Q, N + 1] (the last column: no object), masks [B, Q, h, w] -> [B, N, h, w]."""
    probs = cls_scores.softmax(dim=-1)[..., :-1]
    return torch.einsum('bqc,bqhw->bchw', probs, mask_preds.sigmoid())


def dominant_class(labels: Tensor, ignore_index: int, null_class: int) -> Tensor:
    """[B] the class covering most labelled pixels of each label map [B, H, W] (ties: the lowest
    class id); ``null_class`` where no pixel is labelled."""
    valid = labels != ignore_index
    num_classes = int(labels[valid].max()) + 1 if valid.any() else 1
    flat = torch.where(valid, labels, torch.full_like(labels, num_classes)).flatten(1).long()
    counts = torch.zeros(len(labels), num_classes + 1, dtype=torch.long, device=labels.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    counts = counts[:, :num_classes]
    return torch.where(counts.sum(1) > 0, counts.argmax(1), torch.full_like(counts[:, 0],
                                                                            null_class))


@TASK_ADAPTERS.register_module()
class SegmentationAdapter(TaskAdapter):
    """mmseg ``EncoderDecoder`` (with an optional auxiliary head, whose loss is added as mmseg
    does and which is not distilled).

    Args:
        eps: floor of the mask-classification scores before the log (their logits).
        generation_condition: 'dominant' (each image's largest labelled class conditions the
            generation branch) or 'null' (unconditional).
        ignore_index: the label maps' ignore index (mmseg's 255), for the dominant class.
    """
    granularity = 'dense'

    def __init__(self, eps: float = 1e-6, generation_condition: str = 'dominant',
                 ignore_index: int = 255):
        super().__init__()
        if generation_condition not in ('dominant', 'null'):
            raise ValueError("SegmentationAdapter: generation_condition must be 'dominant' or "
                             f"'null', got {generation_condition!r}")
        self.eps = eps
        self.generation_condition = generation_condition
        self.ignore_index = ignore_index

    def generation_labels(self, data_samples: Sequence, null_class: int,
                          device: torch.device) -> Tensor:
        if self.generation_condition == 'null':
            return super().generation_labels(data_samples, null_class, device)
        labels = torch.stack([s.gt_sem_seg.data[0] for s in data_samples]).to(device)
        return dominant_class(labels, self.ignore_index, null_class)

    def forward_train(self, model: nn.Module, inputs: Tensor, data_samples: Sequence,
                      with_scores: bool) -> TaskOutput:
        feats = model.extract_feat(inputs)
        head = model.decode_head
        if hasattr(head, '_seg_data_to_instance_data'):  # mmseg's MaskFormer-style heads
            gt_instances, img_metas = head._seg_data_to_instance_data(data_samples)
            cls_scores, mask_preds = head(feats, data_samples)
            losses = head.loss_by_feat(cls_scores, mask_preds, gt_instances, img_metas)
            last_cls = cls_scores[-1] if is_list_of(cls_scores, Tensor) else cls_scores
            last_mask = mask_preds[-1] if is_list_of(mask_preds, Tensor) else mask_preds
            logits = (mask_classification_scores(last_cls, last_mask).clamp_min(self.eps).log()
                      if with_scores else None)
        else:
            logits = head(feats)
            losses = head.loss_by_feat(logits, data_samples)
        losses = _add_prefix(losses, 'decode')
        if getattr(model, 'with_auxiliary_head', False):
            aux = model.auxiliary_head
            heads = aux if isinstance(aux, nn.ModuleList) else [aux]
            for index, aux_head in enumerate(heads):
                prefix = 'aux' if len(heads) == 1 else f'aux_{index}'
                losses.update(_add_prefix(aux_head.loss(feats, data_samples, model.train_cfg),
                                          prefix))
        if not with_scores:
            return TaskOutput(losses)
        labels = torch.stack([s.gt_sem_seg.data[0] for s in data_samples]).long()
        labels = labels.to(logits.device)
        valid = labels != head.ignore_index
        labels = torch.where(valid, labels, torch.zeros_like(labels))
        return TaskOutput(losses, StudentScores('dense', logits, labels, valid))

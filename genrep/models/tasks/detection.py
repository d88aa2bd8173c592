"""Object detection with an mmdet two-stage detector (``FasterRCNN``: RPN + ``StandardRoIHead``):
one score vector per region.

One forward of the detector's heads, through mmdet's own methods in the order
``TwoStageDetector.loss`` and ``StandardRoIHead.loss`` call them: the RPN's ``loss_and_predict``
(class-agnostic: labels set to 0, its loss names prefixed ``rpn_``), the RoI head's assigner and
sampler per image, ``bbox_loss`` (RoI features -> ``cls_score``, ``bbox_pred`` and the box losses)
and, for a mask head, ``mask_loss``. The losses are those of ``model.loss`` on the same inputs
(with the same random sampling).

The student's region scores are the RoI classifier's logits of the sampled proposals (the
foreground columns, background dropped: the KL is over candidate classes). A proposal matched to a
ground-truth box is a valid region whose class is that box's and whose teacher is pooled inside
that box (p(y|region) of :func:`genrep.models.distillation.distillation_targets`: RoIAlign of
the dense log-likelihood, then Bayes); negatives are carried with ``valid=False``. The training
data names base classes only, so distillation is over base classes.

The generation branch (Eq. 10) is conditioned on each image's largest box's class
(:func:`largest_box_class`); ``generation_condition='null'`` keeps it unconditional.
"""
import copy
from typing import List, Sequence

import torch
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from torch import Tensor, nn

from genrep.registry import TASK_ADAPTERS
from .base import StudentScores, TaskAdapter, TaskOutput


def largest_box_class(boxes: Sequence[Tensor], labels: Sequence[Tensor], null_class: int,
                      device: torch.device) -> Tensor:
    """[B] the class of each image's largest box (boxes [n_i, 4] x1y1x2y2, labels [n_i]; ties:
    the first box); ``null_class`` for an image without boxes."""
    out = []
    for box, label in zip(boxes, labels):
        if len(box) == 0:
            out.append(null_class)
            continue
        area = (box[:, 2] - box[:, 0]).clamp_min(0) * (box[:, 3] - box[:, 1]).clamp_min(0)
        out.append(int(label[int(area.argmax())]))
    return torch.tensor(out, dtype=torch.long, device=device)


def sum_per_level(value):
    """A loss given per FPN level (mmdet's RPN: a list of tensors) as one tensor, the sum of the
    levels' means, as mmengine's ``BaseModel.parse_losses`` reduces it; a tensor as it is."""
    if isinstance(value, (list, tuple)):
        return sum(item.mean() for item in value)
    return value


def sampled_region_targets(sampling_results: Sequence, num_classes: int):
    """Per sampled RoI, in ``bbox2roi``'s order (each image's positives, then its negatives):
    labels [R] (the matched box's class; ``num_classes`` = background for negatives), valid [R]
    (positives) and the region the teacher pools, [R, 5] rows (image index, x1, y1, x2, y2): the
    matched ground-truth box for a positive, the proposal itself for a negative."""
    labels: List[Tensor] = []
    boxes: List[Tensor] = []
    for res in sampling_results:
        pos_boxes = get_box_tensor(res.pos_gt_bboxes)
        neg_boxes = get_box_tensor(res.neg_priors)
        labels.append(torch.cat([res.pos_gt_labels.long(),
                                 res.pos_gt_labels.new_full((len(neg_boxes), ), num_classes)]))
        boxes.append(torch.cat([pos_boxes, neg_boxes.to(pos_boxes)]))
    labels = torch.cat(labels)
    return labels, labels < num_classes, bbox2roi(boxes)


@TASK_ADAPTERS.register_module()
class DetectionAdapter(TaskAdapter):
    """mmdet ``TwoStageDetector`` with an RPN and a ``StandardRoIHead`` (Faster / Mask R-CNN).

    Args:
        generation_condition: 'largest' (each image's largest box's class conditions the
            generation branch) or 'null' (unconditional).
    """
    granularity = 'region'

    def __init__(self, generation_condition: str = 'largest'):
        super().__init__()
        if generation_condition not in ('largest', 'null'):
            raise ValueError("DetectionAdapter: generation_condition must be 'largest' or "
                             f"'null', got {generation_condition!r}")
        self.generation_condition = generation_condition

    def generation_labels(self, data_samples: Sequence, null_class: int,
                          device: torch.device) -> Tensor:
        if self.generation_condition == 'null':
            return super().generation_labels(data_samples, null_class, device)
        return largest_box_class([get_box_tensor(s.gt_instances.bboxes) for s in data_samples],
                                 [s.gt_instances.labels for s in data_samples], null_class,
                                 device)

    def forward_train(self, model: nn.Module, inputs: Tensor, data_samples: Sequence,
                      with_scores: bool) -> TaskOutput:
        if not getattr(model, 'with_rpn', False) or not hasattr(model, 'roi_head'):
            raise TypeError(f'DetectionAdapter: expects an mmdet two-stage detector with an RPN '
                            f'(FasterRCNN, MaskRCNN), got {type(model).__name__}')
        feats = model.extract_feat(inputs)
        rpn_losses, proposals = self._rpn(model, feats, data_samples)
        losses = dict(rpn_losses)
        roi_head = model.roi_head
        gt_instances, gt_ignore, _ = unpack_gt_instances(data_samples)
        sampling_results = []
        for i, proposal in enumerate(proposals):
            proposal.priors = proposal.pop('bboxes')
            assigned = roi_head.bbox_assigner.assign(proposal, gt_instances[i], gt_ignore[i])
            sampling_results.append(roi_head.bbox_sampler.sample(
                assigned, proposal, gt_instances[i], feats=[level[i][None] for level in feats]))
        bbox_results = roi_head.bbox_loss(feats, sampling_results)
        losses.update(bbox_results['loss_bbox'])
        if roi_head.with_mask:
            losses.update(roi_head.mask_loss(feats, sampling_results, bbox_results['bbox_feats'],
                                             gt_instances)['loss_mask'])
        losses = {name: sum_per_level(value) for name, value in losses.items()}
        if not with_scores:
            return TaskOutput(losses)
        num_classes = roi_head.bbox_head.num_classes
        labels, valid, rois = sampled_region_targets(sampling_results, num_classes)
        logits = bbox_results['cls_score'][:, :num_classes]
        labels = torch.where(valid, labels, torch.zeros_like(labels))
        return TaskOutput(losses, StudentScores('region', logits, labels, valid, rois))

    @staticmethod
    def _rpn(model: nn.Module, feats, data_samples: Sequence):
        """The RPN's losses (prefixed as ``TwoStageDetector.loss`` does) and proposals."""
        proposal_cfg = model.train_cfg.get('rpn_proposal', model.test_cfg.rpn)
        rpn_samples = copy.deepcopy(list(data_samples))
        for sample in rpn_samples:  # class-agnostic RPN targets
            sample.gt_instances.labels = torch.zeros_like(sample.gt_instances.labels)
        rpn_losses, proposals = model.rpn_head.loss_and_predict(feats, rpn_samples,
                                                                proposal_cfg=proposal_cfg)
        losses = {(f'rpn_{key}' if 'loss' in key and 'rpn' not in key else key): value
                  for key, value in rpn_losses.items()}
        return losses, proposals

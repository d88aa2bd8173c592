"""Object detection with mmdet's DINO (a DETR-style decoder, paper A.4): one score vector per
matched query.

One forward of the detector, through mmdet's own methods in the order ``DINO.loss`` and
``DINOHead.loss`` call them: ``extract_feat``, ``forward_transformer`` (encoder, two-stage query
selection, contrastive denoising queries, decoder), the head's branches on every decoder layer and
``loss_by_feat`` (the Hungarian-matched focal / L1 / GIoU losses of each layer, the encoder's and
the denoising queries'). The losses are those of ``model.loss`` on the same inputs.

The counterpart of a two-stage detector's matched proposals is a matched query: the student's
region scores are the last decoder layer's class logits of the matching queries (denoising
queries excluded: they reconstruct noised ground truth, they detect nothing) that the head's
Hungarian assigner gives a ground-truth box, as ``DINOHead.loss_by_feat`` assigns them; the
teacher is pooled inside that box (p(y|region) of
:func:`genrep.models.distillation.distillation_targets`). Unmatched queries carry no class and,
unlike a two-stage detector's sampled negatives, are not passed (hundreds of them would dominate
the candidates each image's summed scores choose). The logits are per-class sigmoid logits; the
distillation's softmax over the K candidate columns makes q proportional to each candidate's odds,
the query's relative preference between classes, which the teacher's Bayes posterior over the
same candidates gives.

The generation branch (Eq. 10) is conditioned as :class:`DetectionAdapter`'s: each image's
largest box's class, or the null class.
"""
from typing import List, Sequence

import torch
from mmdet.models.detectors import DINO
from mmdet.structures.bbox import bbox2roi, bbox_cxcywh_to_xyxy
from torch import Tensor, nn

from genrep.registry import TASK_ADAPTERS
from .base import StudentScores, TaskOutput
from .detection import DetectionAdapter


def matched_query_regions(head: nn.Module, all_layers_cls_scores: Tensor,
                          all_layers_bbox_preds: Tensor, dn_meta: dict,
                          batch_gt_instances: Sequence, batch_img_metas: Sequence):
    """The last decoder layer's matching queries that the head's assigner matches to a
    ground-truth box: their logits [R, N], the boxes' classes [R] and the boxes as regions [R, 5]
    (image index, x1, y1, x2, y2 in input pixels), image by image.

    Args:
        head: the ``DINOHead`` (its ``split_outputs`` and ``get_targets``).
        all_layers_cls_scores: [L, B, Q_dn + Q, N] logits of every decoder layer.
        all_layers_bbox_preds: [L, B, Q_dn + Q, 4] normalised cxcywh boxes.
        dn_meta: the denoising queries' layout from ``DINO.forward_transformer``.
    """
    cls_scores, bbox_preds, _, _ = head.split_outputs(all_layers_cls_scores,
                                                      all_layers_bbox_preds, dn_meta)
    cls_scores, bbox_preds = cls_scores[-1], bbox_preds[-1]
    with torch.no_grad():
        labels_list, _, targets_list, _, _, _ = head.get_targets(
            list(cls_scores.detach()), list(bbox_preds.detach()), list(batch_gt_instances),
            list(batch_img_metas))
    logits: List[Tensor] = []
    labels: List[Tensor] = []
    boxes: List[Tensor] = []
    for image, (image_labels, targets, meta) in enumerate(zip(labels_list, targets_list,
                                                              batch_img_metas)):
        matched = image_labels < head.num_classes
        height, width = meta['img_shape']
        # get_targets gives the matched box normalised cxcywh; back to the image's pixels
        scale = targets.new_tensor([width, height, width, height])
        logits.append(cls_scores[image][matched])
        labels.append(image_labels[matched])
        boxes.append(bbox_cxcywh_to_xyxy(targets[matched]) * scale)
    return torch.cat(logits), torch.cat(labels), bbox2roi(boxes)


@TASK_ADAPTERS.register_module()
class QueryDetectionAdapter(DetectionAdapter):
    """mmdet ``DINO`` (two-stage, box refinement, denoising queries).

    Args:
        generation_condition: as :class:`DetectionAdapter`.
    """
    granularity = 'region'

    def forward_train(self, model: nn.Module, inputs: Tensor, data_samples: Sequence,
                      with_scores: bool) -> TaskOutput:
        if not isinstance(model, DINO):
            raise TypeError(f'QueryDetectionAdapter: expects an mmdet DINO, got '
                            f'{type(model).__name__} (two-stage detectors: DetectionAdapter)')
        head = model.bbox_head
        gt_instances = [sample.gt_instances for sample in data_samples]
        img_metas = [sample.metainfo for sample in data_samples]
        head_inputs = model.forward_transformer(model.extract_feat(inputs), data_samples)
        cls_scores, bbox_preds = head(head_inputs['hidden_states'], head_inputs['references'])
        losses = head.loss_by_feat(cls_scores, bbox_preds, head_inputs['enc_outputs_class'],
                                   head_inputs['enc_outputs_coord'], gt_instances, img_metas,
                                   head_inputs['dn_meta'])
        if not with_scores:
            return TaskOutput(losses)
        logits, labels, rois = matched_query_regions(head, cls_scores, bbox_preds,
                                                     head_inputs['dn_meta'], gt_instances,
                                                     img_metas)
        valid = torch.ones_like(labels, dtype=torch.bool)
        return TaskOutput(losses, StudentScores('region', logits, labels, valid, rois))

"""Detection through GenRep: the adapter on mmdet's Faster R-CNN (one forward of the RPN and RoI
heads, the detector's own losses, region student scores) and region-level distillation checked
against a per-region computation written out here."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.structures import InstanceData

from conftest import REPO_ROOT

SCHEDULER = dict(num_train_timesteps=20, beta_schedule='linear', beta_start=1e-3, beta_end=0.2,
                 variance_type='fixed_small', clip_sample=False)
# Boxes on whole pixels of the 64 x 64 input (the pixel-space teacher grid is the input grid).
BOXES = [[[4, 6, 30, 40], [32, 30, 60, 58]], [[10, 10, 50, 44], [0, 40, 20, 64], [44, 2, 62, 20]]]
LABELS = [[0, 2], [3, 3, 1]]


def tiny_faster_rcnn():
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'tests/data/configs/faster_rcnn_diffusion_tiny.py'))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    return cfg.model


def det_batch(model):
    from mmdet.structures import DetDataSample
    samples = []
    for boxes, labels in zip(BOXES, LABELS):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float),
                                           labels=torch.tensor(labels))
        samples.append(sample)
    generator = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=generator)
              for _ in samples]
    return model.data_preprocessor(dict(inputs=images, data_samples=samples), training=True)


def build_genrep(num_candidates=3, distill_images=1):
    DefaultScope._instance_dict.clear()
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='genrep.GenRep', perception=tiny_faster_rcnn(), task=dict(type='DetectionAdapter'),
        stage=1, schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER),
        posterior=dict(type='ReverseChainPosterior', burn_in=1, thinning=1, temperature=0.1,
                       schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER,
                                     num_inference_steps=3)),
        num_candidates=num_candidates, distill_images=distill_images))


def test_detection_adapter_equals_the_detectors_own_loss_from_one_head_forward():
    model = build_genrep()
    detector = model.perception
    data = det_batch(detector)
    calls = {'rpn': 0, 'bbox': 0}
    handles = [
        detector.rpn_head.register_forward_hook(lambda *a: calls.__setitem__('rpn',
                                                                             calls['rpn'] + 1)),
        detector.roi_head.bbox_head.register_forward_hook(
            lambda *a: calls.__setitem__('bbox', calls['bbox'] + 1))]
    torch.manual_seed(3)  # the RoI sampler draws negatives at random
    out = model.task.forward_train(detector, data['inputs'], data['data_samples'], True)
    for handle in handles:
        handle.remove()
    assert calls == {'rpn': 1, 'bbox': 1}
    torch.manual_seed(3)
    reference = detector.loss(data['inputs'], data['data_samples'])
    assert set(out.losses) == set(reference)
    for name, value in reference.items():  # lists per FPN level: reduced as mmengine does
        expected = sum(v.mean() for v in value) if isinstance(value, list) else value
        torch.testing.assert_close(out.losses[name], expected)
    # the data samples keep their classes (the RPN's class-agnostic targets are a copy)
    assert data['data_samples'][1].gt_instances.labels.tolist() == LABELS[1]

    scores = out.scores
    assert scores.granularity == 'region'
    assert scores.logits.shape[1] == 4 and scores.rois.shape == (len(scores.logits), 5)
    assert scores.valid.sum() >= 5  # mmdet adds the ground-truth boxes as proposals
    for roi, label, valid in zip(scores.rois, scores.labels, scores.valid):
        if not valid:
            continue
        image = int(roi[0])
        # a matched proposal's region is its ground-truth box, its label that box's class
        matches = [j for j, box in enumerate(BOXES[image]) if roi[1:].tolist() == box]
        assert matches and LABELS[image][matches[0]] == int(label)
    # the logits are the RoI classifier's foreground columns (background dropped)
    assert set(LABELS[0]) | set(LABELS[1]) == set(scores.labels[scores.valid].tolist())


class TableEstimator:
    """A stand-in teacher whose dense log-likelihood of class y at a pixel is a table value."""

    def __init__(self, table, temperature):
        self.table = table
        self.temperature = temperature
        self.schedule = None

    def dense_log_likelihood(self, denoiser, x0, class_ids, **kwargs):
        return self.table.gather(1, class_ids[:, :, None, None].expand(-1, -1,
                                                                      *self.table.shape[2:]))


def softmax_list(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


@pytest.mark.parametrize('distill_images', [1, 2])
def test_region_distillation_equals_a_per_region_computation(distill_images):
    """L_gen_distil of a detection batch: for each proposal matched to a ground-truth box, the
    teacher is Bayes over the candidates of the table's mean inside that box; candidates per image:
    its matched boxes' classes, then the head's highest summed region probabilities; the KL to
    the proposal's logits over the candidates, each distilled image weighted as one image."""
    model = build_genrep(num_candidates=3, distill_images=distill_images)
    data = det_batch(model.perception)
    generator = torch.Generator().manual_seed(1)
    table = torch.randn(distill_images, 4, 64, 64, generator=generator)
    model.posterior = TableEstimator(table, temperature=0.5)
    torch.manual_seed(4)
    distil = model.loss(data['inputs'], data['data_samples'])['percept'].gen_distil
    torch.manual_seed(4)  # the same RoI sampling
    scores = model.task.forward_train(model.perception, data['inputs'], data['data_samples'],
                                      True).scores
    logits = scores.logits.detach()
    total, count = 0.0, 0
    for image in range(distill_images):
        mine = scores.rois[:, 0] == image
        present = set(scores.labels[mine & scores.valid].tolist())
        summed = logits[mine].softmax(1).sum(0)
        rest = [c for c in summed.argsort(descending=True).tolist() if c not in present]
        cands = sorted(present) + rest[:3 - len(present)]
        for r in torch.nonzero(mine & scores.valid).flatten().tolist():
            x1, y1, x2, y2 = (int(v) for v in scores.rois[r, 1:])
            pooled = [float(table[image, c, y1:y2, x1:x2].mean()) / 0.5 for c in cands]
            p = softmax_list(pooled)
            q = softmax_list([float(logits[r, c]) for c in cands])
            total += sum(pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q))
            count += 1
    assert count >= 2 * distill_images
    expected = total / (count * 2 / distill_images)
    assert distil.item() == pytest.approx(expected, rel=1e-4)


def test_genrep_detection_stage1_trains_the_head_and_denoiser_through_the_teacher():
    model = build_genrep()
    data = det_batch(model.perception)
    torch.manual_seed(5)
    losses = model.loss(data['inputs'], data['data_samples'])
    distil = losses['percept'].gen_distil
    assert torch.isfinite(distil) and distil > 0
    parsed, log_vars = model.parse_losses(losses)
    assert {'percept_loss_rpn_cls', 'percept_loss_cls', 'percept_loss_gen_distil'} <= set(log_vars)
    distil.backward(retain_graph=True)
    # the KL reaches the RoI classifier and, through the RoI features, the shared denoiser
    assert model.perception.roi_head.bbox_head.fc_cls.weight.grad.abs().sum() > 0
    assert model.denoiser.model.conv_in.weight.grad.abs().sum() > 0


def test_generation_is_conditioned_on_each_images_largest_box():
    from genrep.models.tasks.detection import largest_box_class
    boxes = [torch.tensor([[0., 0, 10, 10], [0, 0, 20, 30]]), torch.zeros(0, 4),
             torch.tensor([[5., 5, 45, 15]])]
    labels = [torch.tensor([3, 1]), torch.zeros(0, dtype=torch.long), torch.tensor([2])]
    assert largest_box_class(boxes, labels, 9, torch.device('cpu')).tolist() == [1, 9, 2]
    model = build_genrep()
    data = det_batch(model.perception)
    # image 0: box 1 (28 x 28) > box 0 (26 x 34 = 884 > 784): class 0; image 1: the 40 x 34 box
    assert model.task.generation_labels(data['data_samples'], 4,
                                        torch.device('cpu')).tolist() == [0, 3]

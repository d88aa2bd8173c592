"""The teacher side of generative distillation at each granularity, against per-pixel and
per-region loops written out here."""
import math

import pytest
import torch
import torch.nn.functional as F

from genrep.diffusion.posteriors import PosteriorEstimator
from genrep.models.distillation import (distillation_avg_factor, distillation_targets,
                                        present_class_candidates)
from genrep.models.losses import GenerativeDistillationLoss
from genrep.models.tasks import StudentScores


class TableEstimator(PosteriorEstimator):
    """A stand-in estimator: the dense log-likelihood of class y at a location is a fixed table
    value (image-level: its mean), so the test knows the teacher exactly."""

    def __init__(self, table, temperature=0.5):
        self.table = table  # [n, N, h, w]
        self.temperature = temperature
        self.seed = 0
        self.num_classes = table.shape[1]

    def _log_likelihood(self, denoiser, x0, class_ids, generator, dense, adjust):
        rows = self.table.gather(1, class_ids[:, :, None, None].expand(-1, -1,
                                                                      *self.table.shape[2:]))
        return rows if dense else rows.flatten(2).mean(2)


def softmax_list(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def test_present_class_candidates_rank_present_classes_by_area_then_scores():
    scores = torch.tensor([[0.0, 5.0, 1.0, 4.0, 3.0]])
    labels = torch.tensor([[[2, 2, 2], [0, 0, 9]]])
    valid = labels != 9
    cands = present_class_candidates(scores, labels.clamp_max(4), valid, 4)
    assert cands.tolist() == [[2, 0, 1, 3]]  # present: 2 (3 px), 0 (2 px); then scores 1, 3
    with pytest.raises(ValueError, match='num_candidates'):
        present_class_candidates(scores, labels.clamp_max(4), valid, 6)


def test_dense_distillation_equals_a_per_pixel_computation():
    torch.manual_seed(0)
    n, batch, num_classes, k, grid = 2, 4, 5, 3, (4, 4)
    table = torch.randn(n, num_classes, *grid)
    estimator = TableEstimator(table)
    logits = torch.randn(n, num_classes, 8, 8, requires_grad=True)
    labels = torch.randint(0, num_classes, (n, 8, 8))
    valid = torch.rand(n, 8, 8) > 0.3
    scores = StudentScores('dense', logits, labels, valid)
    targets = distillation_targets(estimator, None, torch.zeros(n, 4, *grid), scores, k, (32, 32))
    loss = GenerativeDistillationLoss()(
        targets.teacher, targets.logits, targets.candidates, weight=targets.weight,
        avg_factor=distillation_avg_factor(targets.weight, n, batch))

    resized = F.interpolate(logits.detach(), size=grid, mode='bilinear', align_corners=False)
    valid_grid = F.interpolate(valid[:, None].float(), size=grid, mode='nearest')[:, 0]
    total, count = 0.0, 0.0
    for i in range(n):
        # candidates: present valid classes by area, then the highest mean softmax scores
        present = [(int((labels[i][valid[i]] == c).sum()), c) for c in range(num_classes)]
        order = [c for cnt, c in sorted(present, key=lambda t: (-t[0], t[1])) if cnt > 0]
        mean_probs = logits.detach()[i].flatten(1).mean(1).softmax(0)
        rest = [c for c in mean_probs.argsort(descending=True).tolist() if c not in order]
        cands = (order + rest)[:k]
        assert targets.candidates[i].tolist() == cands
        for u in range(grid[0]):
            for v in range(grid[1]):
                if valid_grid[i, u, v] == 0:
                    continue
                p = softmax_list([float(table[i, c, u, v]) / 0.5 for c in cands])
                q = softmax_list([float(resized[i, c, u, v]) for c in cands])
                total += sum(pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q))
                count += 1
    expected = total / (count * batch / n)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert logits.grad.abs().sum() > 0


def test_region_distillation_pools_the_dense_log_likelihood_in_each_box():
    """Region teacher: mean of the dense log-likelihood inside the box, then Bayes. A box that
    covers exactly grid cells on a constant-per-cell table pools to the mean of those cells."""
    torch.manual_seed(1)
    n, num_classes, grid = 2, 4, (8, 8)
    table = torch.randn(n, num_classes, *grid)
    estimator = TableEstimator(table, temperature=1.0)
    # input 32 x 32 px -> 4 px per grid cell; boxes on cell boundaries
    rois = torch.tensor([[0, 0., 0., 16., 8.], [1, 8., 8., 32., 32.], [1, 4., 4., 8., 12.]])
    labels = torch.tensor([1, 3, 0])
    logits = torch.randn(3, num_classes)
    scores = StudentScores('region', logits, labels, torch.ones(3, dtype=torch.bool), rois)
    targets = distillation_targets(estimator, None, torch.zeros(n, 4, *grid), scores, 3,
                                   (32, 32))
    assert targets.teacher.shape == (3, 3)
    cells = [(0, slice(0, 2), slice(0, 4)), (1, slice(2, 8), slice(2, 8)),
             (1, slice(1, 3), slice(1, 2))]
    for r, (i, rows, cols) in enumerate(cells):
        cands = targets.candidates[r].tolist()
        assert int(labels[r]) in cands
        pooled = [float(table[i, c][rows, cols].mean()) for c in cands]
        torch.testing.assert_close(targets.teacher[r], torch.tensor(softmax_list(pooled)),
                                   rtol=1e-4, atol=1e-5)
    # the image with two regions has both regions' classes among its candidates
    assert {3, 0} <= set(targets.candidates[1].tolist())
    assert torch.equal(targets.candidates[1], targets.candidates[2])


def test_image_distillation_uses_the_true_class_and_top_scores():
    torch.manual_seed(2)
    table = torch.randn(3, 6, 2, 2)
    logits = torch.randn(3, 6)
    labels = torch.tensor([4, 0, 2])
    scores = StudentScores('image', logits, labels, torch.ones(3, dtype=torch.bool))
    targets = distillation_targets(TableEstimator(table), None, torch.zeros(3, 4, 2, 2), scores,
                                   2, (16, 16))
    assert targets.candidates[:, 0].tolist() == labels.tolist()
    for i in range(3):
        top = [c for c in logits[i].argsort(descending=True).tolist() if c != labels[i]][:2]
        assert targets.candidates[i, 1:].tolist() == top
    assert distillation_avg_factor(targets.weight, 3, 12).item() == 12.0

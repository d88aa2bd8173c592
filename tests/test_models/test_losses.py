"""GenerativeDistillationLoss (Eq. 4) and RepAlignLoss (Eq. 10) against independent computations."""
import math

import pytest
import torch
import torch.nn.functional as F

from genrep.diffusion.posteriors import restrict_posterior
from genrep.models.losses.generative_distillation import (GenerativeDistillationLoss,
                                                          generative_distillation_kl)
from genrep.models.losses.rep_align import RepAlignLoss
from genrep.registry import MODELS


def random_probs(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(*shape, generator=g), dim=1)


def random_logits(*shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(*shape, generator=g)


# -- generative distillation (Eq. 4) ------------------------------------------------------------
def test_kl_matches_hand_loop_and_kl_div():
    p, z = random_probs(3, 5).double(), random_logits(3, 5).double()
    expected = []
    for b in range(3):
        norm = sum(math.exp(v) for v in z[b].tolist())
        expected.append(sum(pk * (math.log(pk) - (zk - math.log(norm)))
                            for pk, zk in zip(p[b].tolist(), z[b].tolist())))
    kl = generative_distillation_kl(p, z)
    assert kl.shape == (3, )
    assert torch.allclose(kl.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5)
    loss = GenerativeDistillationLoss()(p, z)
    batchmean = F.kl_div(F.log_softmax(z, 1), p, reduction='batchmean')
    assert torch.allclose(loss.double(), batchmean, atol=1e-5)


def test_teacher_gets_no_gradient_student_does():
    p = random_probs(4, 6).requires_grad_()
    z = random_logits(4, 6).requires_grad_()
    GenerativeDistillationLoss()(p, z).backward()
    assert p.grad is None
    assert z.grad is not None and z.grad.abs().sum() > 0
    # d KL / dz = softmax(z) - p (per image, then /B for the mean)
    assert torch.allclose(z.grad, (torch.softmax(z, 1) - p).detach() / 4, atol=1e-6)


@pytest.mark.parametrize('shared', [False, True])
def test_candidate_subset_equals_gather_and_renormalise(shared):
    z = random_logits(3, 10)
    ids = torch.tensor([2, 7, 0, 5]) if shared else torch.tensor([[2, 7, 0, 5], [9, 1, 3, 4],
                                                                   [0, 1, 2, 8]])
    p = random_probs(3, 4)
    q = restrict_posterior(torch.softmax(z, 1), ids.expand(3, -1))
    expected = (p * (p.log() - q.log())).sum(1)
    assert torch.allclose(generative_distillation_kl(p, z, ids), expected, atol=1e-5)


def test_zero_when_student_equals_teacher():
    z = random_logits(4, 7)
    ids = torch.tensor([[0, 3, 6], [1, 2, 5], [6, 5, 4], [0, 1, 2]])
    p = restrict_posterior(torch.softmax(z / 2.0, 1), ids)
    loss = GenerativeDistillationLoss(temperature=2.0)(p, z, ids)
    assert loss.abs() < 1e-6
    # a one-hot teacher (0 log 0 = 0) matched by a confident student is ~0, never nan
    onehot = F.one_hot(torch.tensor([1, 0]), 3).float()
    assert torch.isfinite(generative_distillation_kl(onehot, 50 * onehot)).all()
    assert generative_distillation_kl(onehot, 50 * onehot).max() < 1e-6


def test_dense_equals_per_pixel_average_of_image_level():
    b, c, k, h, w = 2, 6, 4, 3, 5
    z = random_logits(b, c, h, w)
    p = random_probs(b, k, h, w)
    ids = torch.tensor([[5, 0, 2, 3], [1, 4, 0, 2]])
    dense = GenerativeDistillationLoss()(p, z, ids)
    pixel_p = p.permute(0, 2, 3, 1).reshape(-1, k)
    pixel_z = z.permute(0, 2, 3, 1).reshape(-1, c)
    pixel_ids = ids[:, None, :].expand(b, h * w, k).reshape(-1, k)
    image_level = GenerativeDistillationLoss()(pixel_p, pixel_z, pixel_ids)
    assert torch.allclose(dense, image_level, atol=1e-6)
    none = GenerativeDistillationLoss(reduction='none')(p, z, ids)
    assert none.shape == (b, h, w)
    assert torch.allclose(none.sum(), GenerativeDistillationLoss(reduction='sum')(p, z, ids))


def test_dense_logits_are_resized_to_the_teacher_grid():
    p = random_probs(2, 3, 4, 4)
    # spatially constant logits stay constant under any resize: each location sees the same q
    z = random_logits(2, 3)
    expected = generative_distillation_kl(p.permute(0, 2, 3, 1).reshape(-1, 3),
                                          z.repeat_interleave(16, 0)).view(2, 4, 4)
    got = generative_distillation_kl(p, z[:, :, None, None].expand(2, 3, 16, 16))
    assert torch.allclose(got, expected, atol=1e-5)
    # and in general: bilinear on logits (align_corners=False), before the softmax
    z_map = random_logits(2, 3, 8, 8)
    resized = F.interpolate(z_map, size=(4, 4), mode='bilinear', align_corners=False)
    assert torch.allclose(generative_distillation_kl(p, z_map),
                          generative_distillation_kl(p, resized), atol=1e-6)


def test_ignore_mask_and_weights():
    p, z = random_probs(2, 3, 4, 4), random_logits(2, 3, 4, 4)
    keep = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(3)) > 0.4
    loss = GenerativeDistillationLoss(loss_weight=2.0)
    per_location = generative_distillation_kl(p, z)
    assert torch.allclose(loss(p, z, weight=keep), 2.0 * per_location[keep].mean(), atol=1e-6)
    # what the student predicts at ignored locations does not matter
    z_other = torch.where(keep[:, None], z, torch.randn_like(z) * 10)
    assert torch.allclose(loss(p, z, weight=keep), loss(p, z_other, weight=keep), atol=1e-6)
    assert loss(p, z, weight=torch.zeros(2, 4, 4)) == 0
    none = GenerativeDistillationLoss(reduction='none')(p, z, weight=keep)
    assert (none[~keep] == 0).all()
    # avg_factor replaces the divisor (mmdet convention)
    assert torch.allclose(loss(p, z, avg_factor=4.0), 2.0 * per_location.sum() / 4.0)


def test_bad_inputs_raise():
    loss = GenerativeDistillationLoss()
    with pytest.raises(ValueError, match='candidate_ids'):
        loss(random_probs(2, 3), random_logits(2, 5))
    with pytest.raises(ValueError, match='weight'):
        loss(random_probs(2, 3, 4, 4), random_logits(2, 3, 4, 4), weight=torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match='dense'):
        loss(random_probs(2, 3, 4, 4), random_logits(2, 3))
    with pytest.raises(ValueError, match='reduction'):
        GenerativeDistillationLoss(reduction='avg')
    with pytest.raises(ValueError, match='avg_factor'):
        GenerativeDistillationLoss(reduction='sum')(random_probs(2, 3), random_logits(2, 3),
                                                    avg_factor=2)


# -- representation alignment (Eq. 10) ----------------------------------------------------------
def test_rep_align_projector_is_repa_mlp():
    loss = RepAlignLoss(in_channels=6, target_channels=5, hidden_channels=7)
    layers = list(loss.projector)
    assert [type(m).__name__ for m in layers] == ['Linear', 'SiLU', 'Linear', 'SiLU', 'Linear']
    assert [(m.in_features, m.out_features) for m in layers[::2]] == [(6, 7), (7, 7), (7, 5)]
    assert all((m.bias == 0).all() for m in layers[::2])


def test_rep_align_identical_and_opposite_targets():
    torch.manual_seed(0)
    loss = RepAlignLoss(4, 3, hidden_channels=8, reduction='none')
    h = torch.randn(2, 4, 3, 3)
    projected = loss.project(h).detach()
    assert torch.allclose(loss(h, projected), -torch.ones(2, 3, 3), atol=1e-6)
    assert torch.allclose(loss(h, -projected), torch.ones(2, 3, 3), atol=1e-6)
    # scale of the target does not matter, only its direction
    assert torch.allclose(loss(h, 5 * projected), -torch.ones(2, 3, 3), atol=1e-6)


def test_rep_align_matches_hand_cosine():
    torch.manual_seed(1)
    loss = RepAlignLoss(3, 2, hidden_channels=4, loss_weight=0.5)
    h, target = torch.randn(2, 3, 2, 2), torch.randn(2, 2, 2, 2)
    projected = loss.project(h).detach()
    total, count = 0.0, 0
    for b in range(2):
        for i in range(2):
            for j in range(2):
                u, v = projected[b, :, i, j].tolist(), target[b, :, i, j].tolist()
                dot = sum(x * y for x, y in zip(u, v))
                total -= dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))
                count += 1
    assert abs(loss(h, target).item() - 0.5 * total / count) < 1e-5
    # the projector is literally the MLP on each token
    token = h[1, :, 0, 1]
    assert torch.allclose(projected[1, :, 0, 1], loss.projector(token).detach(), atol=1e-6)


def test_rep_align_resizes_projection_to_target_grid():
    torch.manual_seed(2)
    loss = RepAlignLoss(3, 4, hidden_channels=8, reduction='none')
    # spatially constant features on 4x4 -> one projected token everywhere, on the 2x2 target grid
    h = torch.randn(2, 3, 1, 1).expand(2, 3, 4, 4)
    target = torch.randn(2, 4, 2, 2)
    token = loss.projector(h[:, :, 0, 0]).detach()
    expected = -F.cosine_similarity(token[:, :, None, None].expand_as(target), target, dim=1)
    assert torch.allclose(loss(h, target), expected, atol=1e-5)


def test_rep_align_gradients():
    torch.manual_seed(3)
    loss = RepAlignLoss(3, 4, hidden_channels=8)
    h = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randn(2, 4, 4, 4, requires_grad=True)
    loss(h, target).backward()
    assert target.grad is None
    assert h.grad is not None and h.grad.abs().sum() > 0
    for name, param in loss.projector.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_losses_build_from_registry():
    assert isinstance(MODELS.build(dict(type='GenerativeDistillationLoss', temperature=2.0)),
                      GenerativeDistillationLoss)
    built = MODELS.build(dict(type='RepAlignLoss', in_channels=4, target_channels=6,
                              hidden_channels=8))
    assert isinstance(built, RepAlignLoss)
    with pytest.raises(ValueError, match='target'):
        built(torch.randn(1, 4, 2, 2), torch.randn(1, 5, 2, 2))

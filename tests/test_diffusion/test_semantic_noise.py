"""SemanticNoiseAdjuster (Eq. 6-9) against hand computations on small tensors."""
import math

import pytest
import torch

from genrep.diffusion.schedule import DiffusionSchedule
from genrep.diffusion.semantic_noise import (SemanticNoiseAdjuster, semantic_log_variance_scale,
                                             semantic_mean_correction)
from genrep.registry import MODELS


def randomise(adjuster, seed=0):
    """Non-zero W and MLP so that every term of Eq. 6-9 is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in adjuster.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.5)
    return adjuster


def inputs(b=2, c=2, c_sem=3, h=2, w=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, c, h, w, generator=g), torch.randn(b, c, h, w, generator=g),
            torch.randn(b, c, h, w, generator=g), torch.randn(b, c_sem, h, w, generator=g))


def test_zero_init_is_identity():
    adjuster = SemanticNoiseAdjuster(in_channels=2, num_timesteps=10, sem_channels=3)
    mean, log_var, x_t, x_sem = inputs()
    new_mean, new_log_var = adjuster(mean, log_var, x_t, torch.tensor([3, 9]), x_sem)
    assert torch.equal(new_mean, mean) and torch.equal(new_log_var, log_var)


def test_zero_init_is_identity_on_schedule_output():
    schedule = DiffusionSchedule(dict(num_train_timesteps=100, variance_type='learned_range'),
                                 num_inference_steps=10)
    x_t = torch.randn(2, 3, 4, 4)
    out = schedule.p_mean_variance(torch.randn(2, 6, 4, 4).clamp(-1, 1), x_t, index=4)
    adjuster = SemanticNoiseAdjuster(in_channels=3, num_timesteps=schedule.num_train_timesteps)
    mean, log_var = adjuster(out['mean'], out['log_variance'], x_t, schedule.timesteps[4])
    assert torch.equal(mean, out['mean']) and torch.equal(log_var, out['log_variance'])


def test_mean_correction_matches_loops():
    """Eq. 6-7: mu'[b, o, i, j] = mu + sum_c W[t_b, o, c] concat(x_t, x_sem)[b, c, i, j]."""
    adjuster = randomise(SemanticNoiseAdjuster(2, num_timesteps=10, sem_channels=3))
    mean, log_var, x_t, x_sem = inputs()
    t = [3, 8]
    new_mean, _ = adjuster(mean, log_var, x_t, torch.tensor(t), x_sem)
    W = adjuster.mean_weight.detach()
    expected = mean.clone()
    for b in range(2):
        for o in range(2):
            for i in range(2):
                for j in range(3):
                    joint = x_t[b, :, i, j].tolist() + x_sem[b, :, i, j].tolist()
                    expected[b, o, i, j] += sum(W[t[b], o, c].item() * v
                                                for c, v in enumerate(joint))
    assert torch.allclose(new_mean, expected, atol=1e-5)
    # the function alone, with W_t given per sample
    correction = semantic_mean_correction(x_t, x_sem, W[t])
    assert torch.allclose(correction, expected - mean, atol=1e-5)


def test_variance_scale_matches_hand_mlp():
    """Eq. 8-9: log var' = log var + b tanh(MLP(mean_hw x_sem) / b), i.e. var' = var (1 + f)."""
    adjuster = randomise(SemanticNoiseAdjuster(2, num_timesteps=10, sem_channels=3,
                                               hidden_channels=4, max_log_scale=0.7))
    mean, log_var, x_t, x_sem = inputs()
    _, new_log_var = adjuster(mean, log_var, x_t, 5, x_sem)
    w1, b1 = adjuster.variance_mlp[0].weight.tolist(), adjuster.variance_mlp[0].bias.tolist()
    w2, b2 = adjuster.variance_mlp[2].weight.tolist()[0], adjuster.variance_mlp[2].bias.item()
    for b in range(2):
        pooled = [sum(x_sem[b, c].flatten().tolist()) / 6 for c in range(3)]
        hidden = [sum(wk * v for wk, v in zip(w1[n], pooled)) + b1[n] for n in range(4)]
        hidden = [v / (1 + math.exp(-v)) for v in hidden]
        m = sum(wk * v for wk, v in zip(w2, hidden)) + b2
        one_plus_f = math.exp(0.7 * math.tanh(m / 0.7))
        assert torch.allclose(new_log_var[b], log_var[b] + math.log(one_plus_f), atol=1e-5)
        assert torch.allclose(new_log_var[b].exp(), log_var[b].exp() * one_plus_f, rtol=1e-5)
    assert torch.equal(semantic_log_variance_scale(torch.zeros(3), 0.7), torch.zeros(3))


@pytest.mark.parametrize('extreme', [-1e6, -50.0, 50.0, 1e6])
def test_variance_stays_positive_and_bounded(extreme):
    adjuster = SemanticNoiseAdjuster(2, num_timesteps=10, sem_channels=3, max_log_scale=1.5)
    with torch.no_grad():
        adjuster.variance_mlp[-1].bias.fill_(extreme)
    mean, log_var, x_t, x_sem = inputs()
    _, new_log_var = adjuster(mean, log_var, x_t, 0, x_sem)
    scale = (new_log_var - log_var).exp()
    assert torch.isfinite(new_log_var).all() and (new_log_var.exp() > 0).all()
    assert torch.allclose(scale, torch.full_like(scale, math.exp(math.copysign(1.5, extreme))))


def test_weights_are_per_timestep():
    adjuster = randomise(SemanticNoiseAdjuster(2, num_timesteps=10, sem_channels=3))
    mean, log_var, x_t, x_sem = inputs()
    at_3, _ = adjuster(mean, log_var, x_t, 3, x_sem)
    at_7, _ = adjuster(mean, log_var, x_t, 7, x_sem)
    assert not torch.allclose(at_3, at_7)
    # a batch with mixed timesteps equals each sample at its own timestep
    mixed, _ = adjuster(mean, log_var, x_t, torch.tensor([3, 7]), x_sem)
    assert torch.allclose(mixed[0], at_3[0]) and torch.allclose(mixed[1], at_7[1])
    # changing W at another timestep changes nothing at t = 3
    with torch.no_grad():
        adjuster.mean_weight[4].add_(1.0)
    assert torch.equal(adjuster(mean, log_var, x_t, 3, x_sem)[0], at_3)


def test_x_sem_none_uses_x_t():
    adjuster = randomise(SemanticNoiseAdjuster(2, num_timesteps=10))
    mean, log_var, x_t, _ = inputs()
    implicit = adjuster(mean, log_var, x_t, 6)
    explicit = adjuster(mean, log_var, x_t, 6, x_t.clone())
    assert torch.equal(implicit[0], explicit[0]) and torch.equal(implicit[1], explicit[1])
    with pytest.raises(ValueError, match='sem_channels == in_channels'):
        SemanticNoiseAdjuster(2, num_timesteps=10, sem_channels=3)(mean, log_var, x_t, 6)


def test_coarser_x_sem_is_resized_to_x_t():
    adjuster = randomise(SemanticNoiseAdjuster(2, num_timesteps=10, sem_channels=3))
    mean, log_var, x_t, _ = inputs(h=4, w=4)
    constant = torch.randn(2, 3, 1, 1)
    coarse = adjuster(mean, log_var, x_t, 2, constant.expand(2, 3, 2, 2))
    full = adjuster(mean, log_var, x_t, 2, constant.expand(2, 3, 4, 4))
    assert torch.allclose(coarse[0], full[0], atol=1e-6)
    assert torch.allclose(coarse[1], full[1], atol=1e-6)


def test_gradients_reach_weights_and_mlp():
    adjuster = SemanticNoiseAdjuster(2, num_timesteps=10, sem_channels=3, hidden_channels=4)
    mean, log_var, x_t, x_sem = inputs()
    new_mean, new_log_var = adjuster(mean, log_var, x_t, torch.tensor([1, 4]), x_sem)
    (new_mean.square().sum() + new_log_var.sum()).backward()
    grad = adjuster.mean_weight.grad
    assert grad[[1, 4]].abs().sum() > 0
    assert grad[[0, 2, 3, 5, 6, 7, 8, 9]].abs().sum() == 0
    # from zero init the last MLP layer learns first
    assert adjuster.variance_mlp[-1].weight.grad.abs().sum() > 0
    # once it is non-zero, every MLP parameter receives gradient
    adjuster = randomise(adjuster)
    adjuster(mean, log_var, x_t, 1, x_sem)[1].sum().backward()
    for name, param in adjuster.variance_mlp.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_bad_timesteps_and_registry():
    adjuster = MODELS.build(dict(type='SemanticNoiseAdjuster', in_channels=2, num_timesteps=10))
    assert isinstance(adjuster, SemanticNoiseAdjuster)
    mean, log_var, x_t, _ = inputs()
    with pytest.raises(ValueError, match=r'\[0, 10\)'):
        adjuster(mean, log_var, x_t, 10)
    with pytest.raises(ValueError, match='timesteps'):
        adjuster(mean, log_var, x_t, torch.tensor([1, 2, 3]))

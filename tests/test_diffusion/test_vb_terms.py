"""The variational bound of the diffusion layer: ``normal_kl``, the discretised decoder NLL and
``DiffusionSchedule.vb_terms``, each against an independent computation with torch.distributions
(the posterior q(x_{s-1} | x_s, x_0) rebuilt here from diffusers' alphas_cumprod)."""
import math

import pytest
import torch
from diffusers import DDPMScheduler
from torch.distributions import Normal, kl_divergence

from genrep.diffusion.schedule import (DiffusionSchedule, approx_standard_normal_cdf,
                                       discretized_gaussian_log_likelihood, normal_kl)

CFG = dict(num_train_timesteps=1000, timestep_spacing='leading', clip_sample=False)
STEPS = 10
LOG2 = math.log(2.0)


def quantised(*shape, seed=0):
    """8-bit data in [-1, 1] (levels -1 + 2 i / 255), both edge levels included."""
    levels = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed))
    levels.view(-1)[:2] = torch.tensor([0, 255])
    return levels.double() * 2.0 / 255.0 - 1.0


def reference_bin_log_prob(x, mean, std):
    """log P(bin of x) under N(mean, std^2) with the exact CDF, edge bins open."""
    normal = Normal(mean, std)
    upper = normal.cdf(x + 1.0 / 255.0)
    lower = normal.cdf(x - 1.0 / 255.0)
    mass = torch.where(x < -0.999, upper, torch.where(x > 0.999, 1.0 - lower, upper - lower))
    return mass.log()


def reference_posterior(index, x0, x_t):
    """Mean and std of q(x_{s-1} | x_s, x_0) (DDPM Eq. 6-7) from diffusers' respaced
    alphas_cumprod; index > 0 only (at 0 the schedule clips the variance)."""
    ddpm = DDPMScheduler(**CFG)
    ddpm.set_timesteps(STEPS)
    abar = ddpm.alphas_cumprod.double()[ddpm.timesteps.flip(0)]
    a, a_prev = abar[index], abar[index - 1]
    beta = 1 - a / a_prev
    mean = (a_prev.sqrt() * beta * x0 + (a / a_prev).sqrt() * (1 - a_prev) * x_t) / (1 - a)
    return mean, (beta * (1 - a_prev) / (1 - a)).sqrt()


def test_approx_standard_normal_cdf_is_the_normal_cdf():
    x = torch.linspace(-7, 7, 2001, dtype=torch.float64)
    torch.testing.assert_close(approx_standard_normal_cdf(x), Normal(0.0, 1.0).cdf(x), rtol=0,
                               atol=2e-4)


def test_normal_kl_is_torch_kl_divergence():
    g = torch.Generator().manual_seed(0)
    m1, m2, lv1, lv2 = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    expected = kl_divergence(Normal(m1, (0.5 * lv1).exp()), Normal(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), expected)
    assert normal_kl(m1, lv1, m1, lv1).abs().max() < 1e-12
    # not symmetric: the argument order matters
    assert not torch.allclose(normal_kl(m1, lv1, m2, lv2), normal_kl(m2, lv2, m1, lv1))


def test_discretized_log_likelihood_is_the_bin_mass():
    x = quantised(2, 3, 8, 8)
    g = torch.Generator().manual_seed(1)
    mean = torch.rand(x.shape, generator=g, dtype=torch.float64) * 2.2 - 1.1
    std = torch.exp(torch.rand(x.shape, generator=g, dtype=torch.float64) * 3.0 - 4.0)
    ours = discretized_gaussian_log_likelihood(x, mean, std.log())
    expected = reference_bin_log_prob(x, mean, std)
    assert bool((ours <= 1e-12).all())
    # the tanh CDF is within 2e-4 of the exact one, so each bin mass within 4e-4
    torch.testing.assert_close(ours.exp(), expected.exp(), rtol=0, atol=4e-4)
    likely = expected > math.log(0.05)
    torch.testing.assert_close(ours[likely], expected[likely], rtol=0, atol=1e-2)


def test_discretized_bins_sum_to_one_with_open_edges():
    """The 256 bin masses of any Gaussian sum to 1; a Gaussian far below -1 puts all its mass in
    the open first bin (a closed one would have almost none)."""
    levels = torch.arange(256, dtype=torch.float64) * 2.0 / 255.0 - 1.0
    for mean, std in [(0.3, 0.2), (-0.9, 0.01), (0.0, 3.0)]:
        log_probs = discretized_gaussian_log_likelihood(levels, torch.tensor(mean),
                                                        torch.tensor(std).log())
        assert abs(log_probs.exp().sum().item() - 1.0) < 1e-9
    below = discretized_gaussian_log_likelihood(levels, torch.tensor(-3.0),
                                                torch.tensor(0.1).log())
    assert below[0].item() > -1e-6 and below[1].item() < -20
    above = discretized_gaussian_log_likelihood(levels, torch.tensor(3.0), torch.tensor(0.1).log())
    assert above[-1].item() > -1e-6 and above[-2].item() < -20


def make_step(seed=0, batch=4):
    schedule = DiffusionSchedule(CFG, STEPS)
    x0 = quantised(batch, 2, 4, 4, seed=seed).float()
    g = torch.Generator().manual_seed(seed + 1)
    x_t = torch.randn(x0.shape, generator=g)
    # a model near the data: every bin of x0 keeps a mass the float64 reference can resolve
    mean = x0 + 0.1 * torch.randn(x0.shape, generator=g)
    log_variance = 2 * math.log(0.08) + 0.3 * torch.randn(x0.shape, generator=g)
    return schedule, x0, x_t, mean, log_variance


def test_vb_terms_kl_is_zero_at_the_true_posterior_and_grows_with_the_mean_error():
    schedule, x0, x_t, _, _ = make_step()
    for index in (1, 4, STEPS - 1):
        true_mean, true_std = reference_posterior(index, x0.double(), x_t.double())
        log_variance = (2 * true_std.log()).float().expand_as(x0)
        exact = schedule.vb_terms(x0, x_t, index, true_mean.float(), log_variance)
        assert exact.shape == (4, ) and exact.abs().max() < 1e-4
        bits = [schedule.vb_terms(x0, x_t, index, true_mean.float() + shift, log_variance)
                for shift in (0.01, 0.1, 0.3)]
        # an equal-variance KL is (shift / std)^2 / 2 nats per dimension
        for shift, value in zip((0.01, 0.1, 0.3), bits):
            expected = shift**2 / (2 * true_std.item()**2) / LOG2
            torch.testing.assert_close(value, torch.full((4, ), expected), rtol=1e-3, atol=1e-5)
        assert bool((bits[0] < bits[1]).all() and (bits[1] < bits[2]).all())


def test_vb_terms_is_torch_kl_and_decoder_nll_with_per_sample_indices():
    schedule, x0, x_t, mean, log_variance = make_step(seed=3)
    index = torch.tensor([0, 3, STEPS - 1, 0])
    ours = schedule.vb_terms(x0, x_t, index, mean, log_variance)
    model = Normal(mean.double(), (0.5 * log_variance.double()).exp())
    for row, s in enumerate(index.tolist()):
        if s == 0:
            expected = -reference_bin_log_prob(x0[row].double(), model.mean[row],
                                               model.stddev[row])
            rtol = 1e-3  # the tanh CDF of the decoder against the exact one
        else:
            true_mean, true_std = reference_posterior(s, x0[row].double(), x_t[row].double())
            expected = kl_divergence(Normal(true_mean, true_std),
                                     Normal(model.mean[row], model.stddev[row]))
            rtol = 1e-5
        expected_bits = expected.mean().float() / LOG2
        assert expected_bits > 1  # far from 0, so a sign or a branch error shows
        torch.testing.assert_close(ours[row], expected_bits, rtol=rtol, atol=0)
        # the per-sample path equals the int-index path row by row
        alone = schedule.vb_terms(x0[row:row + 1], x_t[row:row + 1], s, mean[row:row + 1],
                                  log_variance[row:row + 1])
        torch.testing.assert_close(ours[row:row + 1], alone)


def test_vb_terms_decoder_nll_small_at_the_data_large_far_from_it():
    schedule, x0, x_t, _, _ = make_step(seed=5)
    sharp = torch.full_like(x0, math.log(1e-3**2))
    at_data = schedule.vb_terms(x0, x_t, 0, x0, sharp)
    assert at_data.abs().max() < 1e-3  # the whole mass in the data's bin: -log 1 = 0 bits
    far = schedule.vb_terms(x0, x_t, 0, x0 + 0.5, sharp)
    assert bool((far > 20).all())
    # the continuous decoder is the Gaussian density
    log_variance = torch.full_like(x0, math.log(0.1**2))
    continuous = schedule.vb_terms(x0, x_t, 0, x0 + 0.05, log_variance, decoder='continuous')
    expected = -Normal(x0 + 0.05, 0.1).log_prob(x0).flatten(1).mean(1) / LOG2
    torch.testing.assert_close(continuous, expected)
    with pytest.raises(ValueError, match="decoder='gaussian'"):
        schedule.vb_terms(x0, x_t, 0, x0, sharp, decoder='gaussian')


def test_vb_terms_trains_mean_and_variance():
    schedule, x0, x_t, mean, log_variance = make_step(seed=7)
    mean.requires_grad_(True)
    log_variance.requires_grad_(True)
    schedule.vb_terms(x0, x_t, torch.tensor([0, 2, 5, 9]), mean, log_variance).sum().backward()
    for grad in (mean.grad, log_variance.grad):
        assert torch.isfinite(grad).all() and bool((grad.flatten(1).abs().sum(1) > 0).all())

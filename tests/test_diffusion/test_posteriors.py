"""Posterior estimators (Eq. 2-3 and Li et al. 2023) against independent computations.

The reference problem has Gaussian classes x | y ~ N(mu_y, s^2 I), whose Bayes posterior is known
in closed form, and whose optimal class-conditional denoiser is analytic: with
x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps, x_t | y ~ N(sqrt(abar) mu_y, (abar s^2 + 1 - abar) I) and
E[eps | x_t, y] = sqrt(1 - abar) (x_t - sqrt(abar) mu_y) / (abar s^2 + 1 - abar).
"""
import math

import pytest
import torch
from diffusers import DDPMScheduler
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from genrep.diffusion.denoisers import UNet2DDenoiser
from genrep.diffusion.posteriors import (DenoisingErrorPosterior, ReverseChainPosterior,
                                         bayes_posterior, candidate_classes,
                                         mixture_log_likelihood, restrict_posterior)
from genrep.diffusion.reverse_chain import reverse_chain_states
from genrep.diffusion.schedule import DiffusionSchedule
from genrep.registry import POSTERIORS

SCHEDULER = dict(num_train_timesteps=1000, clip_sample=False)
# Algorithm 1 as written: the components of one free-running chain, mixed as in Eq. 2.
LITERAL = dict(components='chain', combine='mixture')


class GaussianClassDenoiser(torch.nn.Module):
    """The exact eps-denoiser of N(mu_y, s^2 I) classes; ``var_value`` (a number or a function of
    (x_t, t)) adds learned-range channels."""

    def __init__(self, means, std, var_value=None, scheduler=SCHEDULER):
        super().__init__()
        self.means, self.std, self.var_value = means, std, var_value
        self.abar = DDPMScheduler(**scheduler).alphas_cumprod
        self.num_classes = len(means)

    def forward(self, x_t, t, class_labels):
        a = self.abar[t].to(x_t.dtype).view(-1, *([1] * (x_t.ndim - 1)))
        mu = self.means[class_labels]
        eps = (1 - a).sqrt() * (x_t - a.sqrt() * mu) / (a * self.std**2 + 1 - a)
        if self.var_value is None:
            return eps
        values = (self.var_value(x_t, t) if callable(self.var_value) else torch.full_like(
            eps, self.var_value))
        return torch.cat([eps, values], dim=1)


def gaussian_problem(num_images=512, shape=(1, 2, 2), num_classes=4, sep=1.0, std=0.5, seed=0):
    """Images of Gaussian classes, their exact denoiser and exact Bayes posterior [B, N]."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(num_classes, *shape, generator=g) * sep
    labels = torch.arange(num_images) % num_classes
    x = means[labels] + std * torch.randn(num_images, *shape, generator=g)
    log_lik = Normal(means[None], std).log_prob(x[:, None]).flatten(2).sum(2)
    return x, labels, GaussianClassDenoiser(means, std), torch.softmax(log_lik, dim=1)


def kl(p, q):
    """Mean over the batch of KL(p || q), classes on dim 1."""
    return (p * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum(1).mean().item()


def agreement(p, q):
    return (p.argmax(1) == q.argmax(1)).float().mean().item()


# -- each equation against an independent computation ----------------------------------------
def test_eq2_mixture_is_torch_mixture_of_the_chain_components():
    x, _, denoiser, _ = gaussian_problem(num_images=6, shape=(2, 3, 3), num_classes=3)
    schedule = DiffusionSchedule(SCHEDULER, 12)
    est = ReverseChainPosterior(schedule, burn_in=3, thinning=2, seed=5, **LITERAL)
    ids = torch.tensor([0, 2])
    chain = reverse_chain_states(schedule, denoiser, x, ids.expand(6, 2), 3, 2,
                                 torch.Generator().manual_seed(5))
    std = (0.5 * chain.log_variance).exp()
    # image level: one mixture of S components over all D = 18 dimensions
    comps = Independent(Normal(chain.mean.movedim(0, 2), std.movedim(0, 2)), 3)
    mixture = MixtureSameFamily(Categorical(logits=torch.zeros(len(chain.index))), comps)
    expected = mixture.log_prob(x[:, None]) / 18
    torch.testing.assert_close(est.log_likelihood(denoiser, x, ids), expected)
    # dense: one mixture per location over the C = 2 channels
    loc = Independent(Normal(chain.mean.permute(1, 2, 4, 5, 0, 3), std.permute(1, 2, 4, 5, 0,
                                                                                3)), 1)
    dense = MixtureSameFamily(Categorical(logits=torch.zeros(len(chain.index))), loc)
    expected = dense.log_prob(x.permute(0, 2, 3, 1)[:, None]) / 2
    torch.testing.assert_close(est.dense_log_likelihood(denoiser, x, ids), expected)
    # the stacked form of Eq. 2 equals the streamed one
    comp = torch.randn(5, 3, 4) * 50
    torch.testing.assert_close(mixture_log_likelihood(comp),
                               torch.log(torch.exp(comp.double()).mean(0)).float())


def test_eq3_bayes_with_uniform_prior():
    log_lik = torch.randn(3, 5, 2, 2, dtype=torch.float64)
    tau = 0.3
    prior = 1 / 5
    joint = prior * torch.exp(log_lik / tau)
    torch.testing.assert_close(bayes_posterior(log_lik, tau), joint / joint.sum(1, keepdim=True))


def bound_weights(schedule):
    """(respaced timesteps, the training abar in float64, the variational-bound weights lambda_s
    of ||eps - eps_theta||^2 per respaced index), from the DDPM formulas: beta_s = 1 -
    abar_s / abar_{s-1}, the posterior variance (clipped at s = 0 to s = 1's), lambda_s =
    beta_s^2 / (2 sigma_s^2 (1 - beta_s) (1 - abar_s))."""
    ts = schedule.timesteps.tolist()
    steps = len(ts)
    abar = DDPMScheduler(**SCHEDULER).alphas_cumprod.double()
    abar_prev = [abar[ts[s - 1]] if s > 0 else torch.tensor(1.0).double() for s in range(steps)]
    beta = [1 - abar[ts[s]] / abar_prev[s] for s in range(steps)]
    post_var = [beta[s] * (1 - abar_prev[s]) / (1 - abar[ts[s]]) for s in range(steps)]
    lam = [beta[s]**2 / (2 * post_var[max(s, 1)] * (1 - beta[s]) * (1 - abar[ts[s]]))
           for s in range(steps)]
    return ts, abar, lam


def test_denoising_error_is_li_et_al_computed_directly():
    """-sum_s w_s E_eps ||eps - eps_theta(x_s, s, y)||^2 / D, with the estimator's noise (one
    generator: num_noise draws per index, noisiest index first) and independently computed w_s,
    whatever the timesteps per denoiser call."""
    x, _, denoiser, _ = gaussian_problem(num_images=4, shape=(2, 2, 2), num_classes=3)
    schedule = DiffusionSchedule(SCHEDULER, 8)
    ts, abar, elbo = bound_weights(schedule)
    cases = [('uniform', [1 / 8] * 8, 1), ('elbo', elbo, 1), ('uniform', [1 / 8] * 8, None),
             ('elbo', elbo, 3)]  # step_batch: timesteps per call, the same draws
    for weighting, weights, step_batch in cases:
        est = DenoisingErrorPosterior(schedule, weighting=weighting, num_noise=2, seed=3,
                                      step_batch=step_batch)
        g = torch.Generator().manual_seed(3)
        expected = torch.zeros(4, 3, dtype=torch.float64)
        for s in reversed(range(8)):
            t = torch.full((4, ), ts[s])
            for _ in range(2):
                eps = torch.randn(x.shape, generator=g)
                x_t = abar[ts[s]].sqrt().float() * x + (1 - abar[ts[s]]).sqrt().float() * eps
                for y in range(3):
                    error = ((eps - denoiser(x_t, t, torch.full((4, ), y)))**2).mean((1, 2, 3))
                    expected[:, y] -= weights[s] * error / 2
        torch.testing.assert_close(est.log_likelihood(denoiser, x), expected.float(),
                                   rtol=1e-4, atol=1e-6)
    # its cost unit: the rows the denoiser saw per (image, class), 8 timesteps x 2 draws
    rows = []

    def counting(x_t, t, y):
        rows.append(x_t.shape[0])
        return denoiser(x_t, t, y)

    est.log_likelihood(counting, x, class_ids=torch.arange(3))
    assert est.num_evaluations() == 16 == sum(rows) / (4 * 3)


def test_uniform_combine_is_the_denoising_error_at_the_kept_steps():
    """The default reading ('forward' components, 'uniform' combine; here with independent
    draws, the pairs are tested below): each kept step's
    log-density over its bound weight lambda_s is -||eps_s - eps_theta(x_s, s, y)||^2 plus a
    class-independent constant, so the estimate is -(harmonic mean of lambda) x the mean error
    over the kept steps / D, up to a class-independent constant. Computed directly: the noise
    replayed from one generator (per kept step, noisiest first: x_s's draw, then the step's
    sample draw when s > 0), lambda_s from the DDPM formula, errors of the exact denoiser."""
    x, _, denoiser, _ = gaussian_problem(num_images=4, shape=(2, 2, 2), num_classes=3)
    schedule = DiffusionSchedule(SCHEDULER, 8)
    est = ReverseChainPosterior(schedule, burn_in=1, thinning=2, seed=5, antithetic=False)
    assert ReverseChainPosterior(schedule, burn_in=1).combine == 'uniform'
    ts, abar, lam = bound_weights(schedule)
    kept = [6, 4, 2, 0]  # 8 steps, burn-in 1 (index 7), then every 2nd: 6, 4, 2, 0
    assert est.num_evaluations() == len(kept)
    g = torch.Generator().manual_seed(5)
    errors = torch.zeros(4, 3, dtype=torch.float64)
    for s in kept:
        eps = torch.randn(x.shape, generator=g)
        if s > 0:
            torch.randn(x.shape, generator=g)  # the step's sample draw, unused by the density
        x_s = abar[ts[s]].sqrt().float() * x + (1 - abar[ts[s]]).sqrt().float() * eps
        for y in range(3):
            out = denoiser(x_s, torch.full((4, ), ts[s]), torch.full((4, ), y))
            errors[:, y] += ((eps - out).double()**2).sum((1, 2, 3))
    harmonic = len(kept) / sum(1 / lam[s] for s in kept)
    expected = -harmonic * errors / len(kept) / x[0].numel()
    got = est.log_likelihood(denoiser, x).double()
    # equal up to a class-independent constant: compare the differences between classes
    torch.testing.assert_close(got - got[:, :1], expected - expected[:, :1], rtol=1e-4,
                               atol=1e-6)


# -- agreement with the exact Bayes posterior ------------------------------------------------
def test_denoising_error_with_elbo_weights_is_exact_bayes_at_tau_one_over_d():
    """The variational bound of the exact denoiser is log p(x|y) up to a small gap, so
    tau = 1 / D gives the Bayes posterior itself. Measured (T' = 1000, one noise draw): argmax
    agreement 0.984, KL 0.0023."""
    x, _, denoiser, exact = gaussian_problem(num_images=256)
    est = DenoisingErrorPosterior(DiffusionSchedule(SCHEDULER, 1000), weighting='elbo', seed=0,
                                  temperature=1 / 4)
    post = est.posterior(denoiser, x)
    assert agreement(post, exact) >= 0.95
    assert kl(exact, post) <= 0.02


def test_denoising_error_uniform_weights_agree_with_bayes():
    """Li et al.'s uniform weights (T' = 50): measured argmax agreement 0.984 and KL 0.015 at the
    best temperature of a grid (tau ~ 0.04 for D = 4: the uniform average is not on the
    log-likelihood's scale)."""
    x, _, denoiser, exact = gaussian_problem()
    log_lik = DenoisingErrorPosterior(DiffusionSchedule(SCHEDULER, 50), seed=0).log_likelihood(
        denoiser, x)
    best = min(kl(exact, bayes_posterior(log_lik, tau)) for tau in torch.logspace(-3, 0, 31))
    assert agreement(log_lik, exact) >= 0.95
    assert best <= 0.06


def test_literal_reverse_chain_agrees_with_bayes():
    """Eq. 2 from one chain per class is a kernel estimate around one trajectory; its components
    narrow as the chain nears the data, so it agrees less with Bayes than the denoising error, and
    less for longer chains. Measured at tau = 1 / D with (T', m, k) = (10, 2, 2), 512 images:
    Bayes max-prob 0.975: agreement 0.926, KL 0.26; Bayes max-prob 0.92 (closer classes):
    agreement 0.871, KL 0.36; the uniform posterior's KL is 1.32 and 1.19. (With the paper's
    (200, 50, 2) on these toys: agreement 0.78 and 0.66, KL 0.94 and 1.24.)"""
    schedule = DiffusionSchedule(SCHEDULER, 10)
    est = ReverseChainPosterior(schedule, burn_in=2, thinning=2, seed=0, temperature=1 / 4,
                                **LITERAL)
    for sep, min_agreement, max_kl in [(1.0, 0.9, 0.3), (0.75, 0.83, 0.42)]:
        x, _, denoiser, exact = gaussian_problem(sep=sep)
        post = est.posterior(denoiser, x)
        uniform = torch.full_like(exact, 1 / 4)
        assert agreement(post, exact) >= min_agreement, sep
        assert kl(exact, post) <= max_kl < kl(exact, uniform) / 2, sep


def test_normalised_posterior_neither_one_hot_nor_uniform():
    """Per-dimension normalisation keeps the log-likelihood spread O(1) whatever D, so one tau
    gives a soft posterior at D = 4 and D = 256, where the unnormalised one is one-hot."""
    levels = torch.tensor([-0.6, -0.2, 0.2, 0.6]).view(4, 1, 1, 1)
    estimators = [
        ReverseChainPosterior(DiffusionSchedule(SCHEDULER, 10), burn_in=2, thinning=2, seed=0,
                              temperature=0.1, **LITERAL),
        DenoisingErrorPosterior(DiffusionSchedule(SCHEDULER, 20), seed=0, temperature=0.1)
    ]
    for est in estimators:
        spreads = []
        for shape in [(1, 2, 2), (4, 8, 8)]:
            means = levels.expand(4, *shape)
            x = means[torch.arange(64) % 4] + 0.5 * torch.randn(
                64, *shape, generator=torch.Generator().manual_seed(0))
            denoiser = GaussianClassDenoiser(means, 0.5)
            log_lik = est.log_likelihood(denoiser, x)
            max_prob = bayes_posterior(log_lik, est.temperature).max(1).values.mean().item()
            assert 0.3 < max_prob < 0.9, (type(est).__name__, shape, max_prob)
            spreads.append((log_lik.max(1).values - log_lik.min(1).values).mean().item())
        dims = 256
        assert spreads[1] < 2 * spreads[0]  # normalised: O(1)
        unnormalised = bayes_posterior(log_lik * dims, 1.0)
        assert unnormalised.max(1).values.mean() > 0.95


# -- dense variant -----------------------------------------------------------------------------
def test_dense_relates_to_image_level():
    x, _, denoiser, _ = gaussian_problem(num_images=8, shape=(2, 3, 3), num_classes=3)
    schedule = DiffusionSchedule(SCHEDULER, 12)
    # denoising error: the dense map's average over locations is the image level
    est = DenoisingErrorPosterior(schedule, seed=1)
    dense = est.dense_log_likelihood(denoiser, x)
    assert dense.shape == (8, 3, 3, 3)
    torch.testing.assert_close(dense.mean((2, 3)), est.log_likelihood(denoiser, x))
    batched = DenoisingErrorPosterior(schedule, seed=1, num_noise=2, step_batch=5)
    torch.testing.assert_close(
        batched.dense_log_likelihood(denoiser, x),
        DenoisingErrorPosterior(schedule, seed=1, num_noise=2).dense_log_likelihood(denoiser, x))
    # reverse chain with one kept component (m = T' - 1): equal as well
    one = ReverseChainPosterior(schedule, burn_in=11, thinning=1, seed=1, **LITERAL)
    torch.testing.assert_close(one.dense_log_likelihood(denoiser, x).mean((2, 3)),
                               one.log_likelihood(denoiser, x), rtol=1e-4, atol=1e-4)
    # S components: mean of the per-location mixtures >= image mixture - (hw - 1) log S / D
    many = ReverseChainPosterior(schedule, burn_in=3, thinning=2, seed=1, **LITERAL)
    num_components, dims = 5, 18
    gap = many.dense_log_likelihood(denoiser, x).mean((2, 3)) - many.log_likelihood(denoiser, x)
    assert (gap >= -(9 - 1) * math.log(num_components) / dims - 1e-5).all()
    assert (gap > 1e-3).any()
    # the geometric and uniform combinations are weighted means of logs: equal for any S
    for components, combine in [('forward', 'uniform'), ('forward', 'geometric'),
                                ('chain', 'geometric'), ('chain', 'uniform')]:
        est = ReverseChainPosterior(schedule, burn_in=3, thinning=2, seed=1,
                                    components=components, combine=combine)
        torch.testing.assert_close(est.dense_log_likelihood(denoiser, x).mean((2, 3)),
                                   est.log_likelihood(denoiser, x), rtol=1e-4, atol=1e-4)


# -- budget ---------------------------------------------------------------------------------------
@pytest.mark.parametrize('estimator', ['chain', 'forward', 'error'])
def test_budgeted_candidates_equal_restricted_exact(estimator):
    x, labels, denoiser, _ = gaussian_problem(num_images=6, shape=(1, 2, 2), num_classes=7)
    schedule = DiffusionSchedule(SCHEDULER, 10)
    kwargs = dict(seed=4, temperature=0.2)
    if estimator != 'error':
        kwargs.update(components=estimator, combine='mixture' if estimator == 'chain' else
                      'geometric')
        exact_est = ReverseChainPosterior(schedule, burn_in=2, thinning=2, **kwargs)
        budget_est = ReverseChainPosterior(schedule, burn_in=2, thinning=2, class_batch=2, **kwargs)
    else:
        exact_est = DenoisingErrorPosterior(schedule, **kwargs)
        budget_est = DenoisingErrorPosterior(schedule, class_batch=2, **kwargs)
    scores = torch.randn(6, 7, generator=torch.Generator().manual_seed(0))
    candidates = candidate_classes(scores, 2, labels)
    for dense in [False, True]:
        full = exact_est.posterior(denoiser, x, dense=dense)
        assert full.shape[1] == 7
        budget = budget_est.posterior(denoiser, x, candidates, dense=dense)
        torch.testing.assert_close(budget, restrict_posterior(full, candidates))


class CallCounter(torch.nn.Module):
    """A denoiser wrapper that counts calls and the states each saw, and keeps each call's
    (x_t, t)."""

    def __init__(self, denoiser):
        super().__init__()
        self.denoiser, self.calls, self.states, self.inputs = denoiser, 0, 0, []
        self.num_classes = denoiser.num_classes

    def forward(self, x_t, t, class_labels):
        self.calls += 1
        self.states += x_t.shape[0]
        self.inputs.append((x_t.clone(), t.clone()))
        return self.denoiser(x_t, t, class_labels)


@pytest.mark.parametrize('step_batch,class_batch', [(None, None), (2, None), (None, 5)])
def test_forward_components_batched_over_steps_equal_one_step_a_call(step_batch, class_batch):
    """The kept steps of 'forward' components are independent given x: evaluated several to a
    denoiser call (per-column timesteps) the estimate is the one of a call a step, with the same
    noise, in fewer calls and the same number of states."""
    x, _, denoiser, _ = gaussian_problem(num_images=5, shape=(1, 2, 2), num_classes=3)
    denoiser.var_value = lambda x_t, t: torch.tanh(x_t) * 0.5  # learned-range variance too
    schedule = DiffusionSchedule(dict(SCHEDULER, variance_type='learned_range'), 12)
    kwargs = dict(burn_in=1, thinning=2, seed=3, class_batch=class_batch)
    one, many = CallCounter(denoiser), CallCounter(denoiser)
    reference = ReverseChainPosterior(schedule, **kwargs).log_likelihood(one, x)
    batched = ReverseChainPosterior(schedule, step_batch=step_batch, **kwargs)
    torch.testing.assert_close(batched.log_likelihood(many, x), reference)
    kept = batched.num_evaluations()
    assert kept == 6 and one.calls == kept and one.states == many.states == 5 * 3 * kept
    expected_calls = {(None, None): 1, (2, None): 3, (None, 5): math.ceil(3 * kept / 5)}
    assert many.calls == expected_calls[(step_batch, class_batch)]
    with pytest.raises(ValueError, match='step_batch'):
        ReverseChainPosterior(schedule, burn_in=1, step_batch=0)


def test_candidate_classes():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.8, 0.1, 0.7, 0.2]])
    labels = torch.tensor([3, 0])
    candidates = candidate_classes(scores, 2, labels)
    assert candidates.tolist() == [[3, 1, 2], [0, 2, 3]]
    assert candidate_classes(scores, 2).tolist() == [[1, 2], [0, 2]]
    assert scores[0, 3] == 0.3  # not modified


def test_shared_candidate_list_and_bad_shapes():
    x, _, denoiser, _ = gaussian_problem(num_images=3, num_classes=4)
    est = DenoisingErrorPosterior(DiffusionSchedule(SCHEDULER, 5), seed=0)
    shared = est.log_likelihood(denoiser, x, torch.tensor([2, 0]))
    per_image = est.log_likelihood(denoiser, x, torch.tensor([[2, 0]] * 3))
    torch.testing.assert_close(shared, per_image)
    with pytest.raises(ValueError, match=r'\[B=3, K\]'):
        est.log_likelihood(denoiser, x, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='temperature'):
        DenoisingErrorPosterior(DiffusionSchedule(SCHEDULER, 5), temperature=0)


# -- learned-range variance --------------------------------------------------------------------
def test_learned_range_variance_is_read_from_the_extra_channels():
    """Values +1 / -1 on the extra channels are the ends of the range, i.e. the fixed_large /
    fixed_small chains; other values give other likelihoods."""
    x, _, denoiser, _ = gaussian_problem(num_images=4, shape=(2, 2, 2), num_classes=3)

    def log_lik(variance_type, var_value=None):
        schedule = DiffusionSchedule(dict(SCHEDULER, variance_type=variance_type), 10)
        den = GaussianClassDenoiser(denoiser.means, 0.5, var_value)
        return ReverseChainPosterior(schedule, burn_in=2, thinning=2, seed=0).log_likelihood(
            den, x)

    torch.testing.assert_close(log_lik('learned_range', 1.0), log_lik('fixed_large'))
    torch.testing.assert_close(log_lik('learned_range', -1.0), log_lik('fixed_small'))
    varying = log_lik('learned_range', lambda x_t, t: torch.tanh(x_t))
    assert not torch.allclose(varying, log_lik('learned_range', 0.0))
    with pytest.raises(ValueError, match='2 x 2 channels'):
        log_lik('learned_range')


# -- plumbing ----------------------------------------------------------------------------------
def test_registry_and_diffusers_denoiser():
    """Built from config; runs on a tiny diffusers UNet with learned variance; the noise is
    fixed by the seed; no gradient reaches the denoiser."""
    from tiny_models import unet2d_cfg
    torch.manual_seed(0)
    unet = UNet2DDenoiser(config=unet2d_cfg(num_classes=3, learn_sigma=True)['config'])
    schedule = dict(type='DiffusionSchedule', scheduler=dict(SCHEDULER, variance_type=(
        'learned_range')), num_inference_steps=3)
    chain = POSTERIORS.build(dict(type='ReverseChainPosterior', schedule=schedule, burn_in=1,
                                  thinning=1, seed=0, class_batch=2))
    error = POSTERIORS.build(dict(type='DenoisingErrorPosterior', schedule=schedule, seed=0))
    x = torch.randn(2, 1, 8, 8)
    for est in [chain, error]:
        log_lik = est.log_likelihood(unet, x)
        assert log_lik.shape == (2, 3) and torch.isfinite(log_lik).all()
        post = est.posterior(unet, x, torch.tensor([[0, 2], [1, 0]]), dense=True)
        assert post.shape == (2, 2, 8, 8) and not post.requires_grad
        torch.testing.assert_close(post.sum(1), torch.ones(2, 8, 8))
    # same seed, same noise: a second call repeats the first
    torch.testing.assert_close(chain.log_likelihood(unet, x), chain.log_likelihood(unet, x))


def test_reverse_chain_posterior_refuses_a_chain_without_kept_steps_when_built():
    """6 of 20 steps run at strength 0.3; a burn-in of 6 leaves none, and says so at build time."""
    schedule = DiffusionSchedule(SCHEDULER, 20)
    ReverseChainPosterior(schedule, burn_in=5, thinning=2, strength=0.3)
    with pytest.raises(ValueError, match='burn_in m=6 leaves no step of a 6-step chain'):
        ReverseChainPosterior(schedule, burn_in=6, thinning=2, strength=0.3)
    with pytest.raises(ValueError, match='strength must be in'):
        ReverseChainPosterior(schedule, strength=0.0)


def test_reverse_chain_posterior_mixes_the_adjusted_steps():
    """With an ``adjust`` hook the teacher's components are the adjusted reverse steps (Eq. 2 over
    the chain of Eq. 6-9), and its estimate differs from the unadjusted one."""
    x, _, denoiser, _ = gaussian_problem(num_images=3, shape=(2, 2, 2), num_classes=3)
    schedule = DiffusionSchedule(SCHEDULER, 10)

    def adjust(mean, log_variance, x_t, index):
        return mean + 0.2 * x_t, log_variance + 0.3

    ids = torch.tensor([0, 1, 2])
    est = ReverseChainPosterior(schedule, burn_in=2, thinning=3, seed=1, **LITERAL)
    chain = reverse_chain_states(schedule, denoiser, x, ids.expand(3, 3), 2, 3,
                                 torch.Generator().manual_seed(1), adjust=adjust)
    comps = Independent(Normal(chain.mean.movedim(0, 2), (0.5 * chain.log_variance).exp().movedim(
        0, 2)), 3)
    mixture = MixtureSameFamily(Categorical(logits=torch.zeros(len(chain.index))), comps)
    adjusted = est.log_likelihood(denoiser, x, ids, adjust=adjust)
    torch.testing.assert_close(adjusted, mixture.log_prob(x[:, None]) / 8)
    assert (est.log_likelihood(denoiser, x, ids) - adjusted).abs().max() > 1e-2


@pytest.mark.parametrize('step_batch', [1, None, 3])
def test_antithetic_pairs_negate_the_input_noise(step_batch):
    """antithetic (the default): the kept steps in pairs (chain order), the second noised with
    the negation of the first's draw, whatever the step batching; the recovered noise
    (x_s - sqrt(abar) x) / sqrt(1 - abar) of each pair sums to zero, and an odd last step has its
    own draw."""
    x, _, denoiser, _ = gaussian_problem(num_images=3, shape=(1, 2, 2), num_classes=2)
    schedule = DiffusionSchedule(SCHEDULER, 12)
    abar = DDPMScheduler(**SCHEDULER).alphas_cumprod
    recorder = CallCounter(denoiser)
    est = ReverseChainPosterior(schedule, burn_in=1, thinning=2, seed=4, step_batch=step_batch)
    assert est.antithetic  # the default for 'forward' components
    assert est.num_evaluations() == 6
    estimate = est.log_likelihood(recorder, x)
    noises = []
    for x_t, t in recorder.inputs:  # rows: image-major, then (step, class) columns
        per_image = x_t.shape[0] // 3
        for row in range(0, x_t.shape[0], 2):  # the 2 classes of an image see one state
            a = abar[t[row]]
            noises.append((int(t[row]), (x_t[row] - a.sqrt() * x[row // per_image]) /
                           (1 - a).sqrt()))
    by_step = {}
    for timestep, noise in noises:
        by_step.setdefault(timestep, []).append(noise)
    steps = sorted(by_step, reverse=True)  # chain order
    assert len(steps) == 6
    for first, second in zip(steps[0::2], steps[1::2]):
        torch.testing.assert_close(torch.stack(by_step[first]), -torch.stack(by_step[second]),
                                   atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        estimate, ReverseChainPosterior(schedule, burn_in=1, thinning=2, seed=4,
                                        antithetic=True).log_likelihood(denoiser, x))
    with pytest.raises(ValueError, match='antithetic'):
        ReverseChainPosterior(schedule, burn_in=1, components='chain', antithetic=True)

"""The teacher cache (issue 13): a cached teacher equals a fresh one at refresh time, serves later
steps without denoiser calls while fresh, covers candidate subsets, and expires."""
import pytest
import torch
from test_genrep import batch, build

from genrep.diffusion.posteriors import ReverseChainPosterior, bayes_posterior
from genrep.diffusion.sample_generators import SampleGenerators
from genrep.diffusion.schedule import DiffusionSchedule
from genrep.models.teacher_cache import TeacherCache, cached_posterior

SCHEDULER = dict(num_train_timesteps=1000, clip_sample=False)


class GaussianClasses(torch.nn.Module):
    """The exact eps-denoiser of N(mu_y, s^2 I) classes, counting its calls."""

    def __init__(self, means, std=0.5):
        super().__init__()
        from diffusers import DDPMScheduler
        self.means, self.std, self.calls = means, std, 0
        self.abar = DDPMScheduler(**SCHEDULER).alphas_cumprod
        self.num_classes = len(means)

    def forward(self, x_t, t, class_labels):
        self.calls += 1
        a = self.abar[t].view(-1, *([1] * (x_t.ndim - 1)))
        mu = self.means[class_labels]
        return (1 - a).sqrt() * (x_t - a.sqrt() * mu) / (a * self.std**2 + 1 - a)


def problem(n=4, classes=5):
    g = torch.Generator().manual_seed(0)
    means = torch.randn(classes, 1, 2, 2, generator=g)
    x = means[torch.arange(n) % classes] + 0.5 * torch.randn(n, 1, 2, 2, generator=g)
    estimator = ReverseChainPosterior(DiffusionSchedule(SCHEDULER, 10), burn_in=2, thinning=2,
                                      temperature=0.3)
    return x, GaussianClasses(means), estimator


def generators(n, iteration):
    return SampleGenerators.keyed([(7, iteration, key, 0) for key in range(n)])


def test_cached_teacher_equals_a_fresh_one_at_refresh_and_is_reused_while_fresh():
    x, denoiser, estimator = problem()
    candidates = torch.tensor([[0, 1, 2], [1, 3, 4], [2, 0, 4], [3, 4, 1]])
    keys = [10, 11, 12, 13]
    cache = TeacherCache(max_age=3)
    # Refresh (empty cache): exactly the fresh teacher with the same per-sample noise.
    got = cached_posterior(estimator, denoiser, x, candidates, cache, keys, 5, generators(4, 5))
    fresh = estimator.posterior(denoiser, x, candidates, generators(4, 5))
    torch.testing.assert_close(got, fresh)
    assert len(cache) == 4 and (cache.hits, cache.misses) == (0, 4)

    # Within max_age: the same posterior, no denoiser call, even for a subset in another order.
    calls = denoiser.calls
    again = cached_posterior(estimator, denoiser, x, candidates, cache, keys, 8, generators(4, 8))
    torch.testing.assert_close(again, fresh)
    subset = candidates[:, [2, 0]]
    part = cached_posterior(estimator, denoiser, x, subset, cache, keys, 8, generators(4, 8))
    assert denoiser.calls == calls
    log_lik = estimator.log_likelihood(denoiser, x, candidates, generators(4, 5))
    torch.testing.assert_close(part, bayes_posterior(log_lik[:, [2, 0]], 0.3))
    calls = denoiser.calls

    # A candidate the entry lacks (image 0) and an expired entry (iteration 9 > 5 + 3): estimated
    # again, each with its own sample's noise, the others still from the cache.
    other = candidates.clone()
    other[0, 2] = 3
    mixed = cached_posterior(estimator, denoiser, x, other, cache, keys, 8, generators(4, 8))
    assert denoiser.calls > calls
    first = estimator.posterior(denoiser, x[:1], other[:1], generators(4, 8).select([0]))
    torch.testing.assert_close(mixed[:1], first)
    torch.testing.assert_close(mixed[1:], fresh[1:])
    expired = cached_posterior(estimator, denoiser, x, candidates, cache, keys, 9,
                               generators(4, 9))
    torch.testing.assert_close(expired[1:], estimator.posterior(
        denoiser, x[1:], candidates[1:], generators(4, 9).select([1, 2, 3])))


def test_cache_bounds_and_arguments():
    cache = TeacherCache(max_age=10, max_entries=2)
    for key in range(3):
        cache.store([key], torch.tensor([[0, 1]]), torch.tensor([[0.0, -1.0]]), 0)
    assert len(cache) == 2
    hit, values = cache.lookup([0, 1, 2], torch.tensor([[0, 1]] * 3), 1)
    assert hit.tolist() == [False, True, True] and torch.isnan(values[0]).all()
    # An entry from a later iteration than the step (a resumed run) is not used.
    assert not cache.lookup([2], torch.tensor([[0, 1]]), -1)[0].any()
    with pytest.raises(ValueError, match='max_age'):
        TeacherCache(max_age=-1)
    with pytest.raises(ValueError, match='max_entries'):
        TeacherCache(max_age=1, max_entries=0)


def test_genrep_teacher_cache_skips_the_teacher_for_a_cached_image():
    """GenRep(teacher_cache=...): the second step on the same images (same dataset indices) spends
    no denoiser evaluation on the teacher and distils the same targets."""
    model = build(1, teacher_cache=dict(max_age=100))
    inputs, samples = batch(4)
    for i, sample in enumerate(samples):
        sample.set_metainfo(dict(sample_idx=50 + i))
    first = model.perception_step(inputs, samples)
    second = model.perception_step(inputs, samples)
    assert first.task['teacher_evals'] > 0 and second.task['teacher_evals'] == 0
    torch.testing.assert_close(first.gen_distil, second.gen_distil)
    assert len(model.teacher_cache) == 4
    with pytest.raises(ValueError, match='teacher_cache needs a posterior'):
        build(1, posterior=None, teacher_cache=dict(max_age=1))

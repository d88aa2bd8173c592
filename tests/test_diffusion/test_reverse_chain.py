"""The reverse chain: kept-step indices (burn-in m, thinning k), agreement with diffusers' DDPM
sampling loop under the same generator, noise shared by classes, class batching; the one loop
(``reverse_steps``) behind the teacher chain and class-conditional sampling (``sample_chain``),
and the ``adjust`` hook of both against hand-written loops."""
import pytest
import torch
from diffusers import DDPMScheduler

from genrep.diffusion.reverse_chain import (chain_length, kept_step_indices, reverse_chain,
                                            reverse_chain_states, reverse_steps, sample_chain)
from genrep.diffusion.schedule import DiffusionSchedule


class LinearClassDenoiser(torch.nn.Module):
    """eps = (x_t - sqrt(abar_t) mu_y) sqrt(1 - abar_t) / (abar_t s^2 + 1 - abar_t): the optimal
    denoiser of Gaussian classes N(mu_y, s^2 I); with ``var_value``, learned-range channels."""

    def __init__(self, means, std, alphas_cumprod, var_value=None):
        super().__init__()
        self.means, self.std, self.abar, self.var_value = means, std, alphas_cumprod, var_value

    def forward(self, x_t, t, class_labels):
        a = self.abar[t].to(x_t.dtype).view(-1, *([1] * (x_t.ndim - 1)))
        eps = (1 - a).sqrt() * (x_t - a.sqrt() * self.means[class_labels]) / (
            a * self.std**2 + 1 - a)
        if self.var_value is None:
            return eps
        return torch.cat([eps, self.var_value(x_t, t)], dim=1)


def make(num_classes=3, shape=(2, 3, 3), **scheduler):
    cfg = dict(dict(num_train_timesteps=1000, clip_sample=False), **scheduler)
    means = torch.randn(num_classes, *shape, generator=torch.Generator().manual_seed(1))
    return cfg, LinearClassDenoiser(means, 0.5, DDPMScheduler(**cfg).alphas_cumprod)


def test_kept_step_indices():
    # the paper's settings (Table 16): ceil((T' - m) / k) = 75 components
    for steps, m, k in [(200, 50, 2), (275, 50, 3), (350, 50, 4)]:
        kept = kept_step_indices(steps, m, k)
        assert len(kept) == 75 and kept[0] == steps - m - 1 - (steps - m - 1) % k
        assert kept[-1] == 0
    assert kept_step_indices(200, 50, 2)[:3] == [148, 146, 144]
    assert kept_step_indices(10, 3, 2) == [6, 4, 2, 0]
    assert kept_step_indices(10, 3, 3) == [6, 3, 0]
    assert kept_step_indices(10, 4, 3) == [3, 0]
    assert kept_step_indices(5, 0, 1) == [4, 3, 2, 1, 0]
    assert kept_step_indices(5, 4, 7) == [0]
    with pytest.raises(ValueError, match='burn_in'):
        kept_step_indices(5, 5, 1)
    with pytest.raises(ValueError, match='thinning'):
        kept_step_indices(5, 0, 0)


def test_chain_yields_exactly_the_kept_steps():
    cfg, denoiser = make()
    schedule = DiffusionSchedule(cfg, 12)
    x0 = torch.randn(2, 2, 3, 3)
    steps = list(reverse_chain(schedule, denoiser, x0, torch.tensor([[0, 1], [2, 0]]), 3, 2,
                               torch.Generator().manual_seed(0)))
    assert [s.index for s in steps] == [8, 6, 4, 2, 0]
    assert [s.timestep for s in steps] == [schedule.timesteps[i].item() for i in [8, 6, 4, 2, 0]]
    assert steps[0].mean.shape == (2, 2, 2, 3, 3) == steps[0].log_variance.shape


@pytest.mark.parametrize('variance_type', ['fixed_small', 'fixed_large', 'learned_range'])
def test_chain_is_diffusers_ddpm_loop(variance_type):
    """With one class, all steps kept and the same generator, the chain's states are those of a
    diffusers DDPMScheduler loop started from the forward-noised input (Algorithm 1, line 14)."""
    cfg, denoiser = make(variance_type=variance_type, timestep_spacing='leading')
    if variance_type == 'learned_range':
        denoiser.var_value = lambda x_t, t: torch.tanh(x_t + t.view(-1, 1, 1, 1) / 500.0)
    steps = 20
    schedule = DiffusionSchedule(cfg, steps)
    x0 = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 1, 2, 1])
    chain = reverse_chain_states(schedule, denoiser, x0, labels[:, None], 0, 1,
                                 torch.Generator().manual_seed(7))

    ddpm = DDPMScheduler(**cfg)
    ddpm.set_timesteps(steps)
    g = torch.Generator().manual_seed(7)
    x_t = ddpm.add_noise(x0, torch.randn(x0.shape, generator=g), ddpm.timesteps[:1])
    samples = []
    for t in ddpm.timesteps:
        x_t = ddpm.step(denoiser(x_t, t.expand(4), labels), t, x_t, generator=g).prev_sample
        samples.append(x_t)
    torch.testing.assert_close(chain.sample[:, :, 0], torch.stack(samples), rtol=1e-4, atol=1e-4)
    # at the last step (timestep 0) the sample is the mean
    torch.testing.assert_close(chain.mean[-1], chain.sample[-1])


def test_classes_share_noise_and_class_batching_changes_nothing():
    cfg, denoiser = make(num_classes=4)
    schedule = DiffusionSchedule(cfg, 10)
    x0 = torch.randn(2, 2, 3, 3)
    ids = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])
    full = reverse_chain_states(schedule, denoiser, x0, ids, 2, 2,
                                torch.Generator().manual_seed(0))
    batched = reverse_chain_states(schedule, denoiser, x0, ids, 2, 2,
                                   torch.Generator().manual_seed(0), class_batch=3)
    torch.testing.assert_close(full.mean, batched.mean)
    # each (image, class) chain is the one-class chain of that class under the same noise
    for column in range(4):
        alone = reverse_chain_states(schedule, denoiser, x0, ids[:, column:column + 1], 2, 2,
                                     torch.Generator().manual_seed(0))
        torch.testing.assert_close(full.mean[:, :, column], alone.mean[:, :, 0])
    # with equal class means the chains coincide: only the class makes them differ
    denoiser.means = denoiser.means[:1].expand(4, -1, -1, -1)
    same = reverse_chain_states(schedule, denoiser, x0, ids, 2, 2,
                                torch.Generator().manual_seed(0))
    torch.testing.assert_close(same.mean, same.mean[:, :, :1].expand_as(same.mean))


def test_mismatched_batch_raises():
    cfg, denoiser = make()
    with pytest.raises(ValueError, match='class_ids has 3 rows'):
        list(reverse_chain(DiffusionSchedule(cfg, 5), denoiser, torch.randn(2, 2, 3, 3),
                           torch.zeros(3, 1, dtype=torch.long), 0, 1))


@pytest.mark.parametrize('strength', [0.3, 0.55, 1.0])
def test_strength_starts_the_chain_as_diffusers_img2img(strength):
    """A chain at ``strength`` runs the last int(T' * strength) respaced steps, from the input
    forward-noised to the first of them (the timesteps diffusers' image-to-image pipelines run),
    and burn-in and thinning count over the steps that run."""
    cfg, denoiser = make(timestep_spacing='leading')
    steps = 20
    schedule = DiffusionSchedule(cfg, steps)
    x0 = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(4))
    labels = torch.tensor([2, 0, 1])
    chain = reverse_chain_states(schedule, denoiser, x0, labels[:, None], 0, 1,
                                 torch.Generator().manual_seed(5), strength=strength)

    ddpm = DDPMScheduler(**cfg)
    ddpm.set_timesteps(steps)
    run = ddpm.timesteps[steps - int(steps * strength):]  # diffusers' img2img get_timesteps
    g = torch.Generator().manual_seed(5)
    x_t = ddpm.add_noise(x0, torch.randn(x0.shape, generator=g), run[:1])
    samples = []
    for t in run:
        x_t = ddpm.step(denoiser(x_t, t.expand(3), labels), t, x_t, generator=g).prev_sample
        samples.append(x_t)
    assert chain.timestep.tolist() == run.tolist()
    torch.testing.assert_close(chain.sample[:, :, 0], torch.stack(samples), rtol=1e-4, atol=1e-4)

    kept = reverse_chain_states(schedule, denoiser, x0, labels[:, None], 2, 2,
                                torch.Generator().manual_seed(5), strength=strength)
    assert kept.index.tolist() == kept_step_indices(int(steps * strength), 2, 2)


def test_strength_bounds():
    assert chain_length(20, 0.3) == 6 and chain_length(20, 0.01) == 1 and chain_length(6, 1.0) == 6
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match='strength must be in'):
            chain_length(20, bad)


def adjust_step(mean, log_variance, x_t, index):
    """An ``adjust`` hook that reads every argument (so a wrong one or a wrong order shows)."""
    return mean + 0.05 * (index + 1) * x_t, log_variance - 0.4


@pytest.mark.parametrize('variance_type', ['fixed_small', 'fixed_large', 'learned_range'])
def test_sample_chain_is_diffusers_ddpm_loop_from_noise(variance_type):
    cfg, denoiser = make(variance_type=variance_type, timestep_spacing='leading')
    if variance_type == 'learned_range':
        denoiser.var_value = lambda x_t, t: torch.tanh(x_t - t.view(-1, 1, 1, 1) / 700.0)
    steps = 15
    labels = torch.tensor([2, 0, 1, 1])
    samples = sample_chain(DiffusionSchedule(cfg, steps), denoiser, labels, (2, 3, 3),
                           torch.Generator().manual_seed(11))

    ddpm = DDPMScheduler(**cfg)
    ddpm.set_timesteps(steps)
    g = torch.Generator().manual_seed(11)
    x_t = torch.randn(4, 2, 3, 3, generator=g)
    for t in ddpm.timesteps:
        x_t = ddpm.step(denoiser(x_t, t.expand(4), labels), t, x_t, generator=g).prev_sample
    assert samples.shape == (4, 2, 3, 3)
    torch.testing.assert_close(samples, x_t, rtol=1e-4, atol=1e-4)


def test_sample_chain_with_adjust_is_the_hand_written_loop():
    cfg, denoiser = make()
    schedule = DiffusionSchedule(cfg, 8)
    labels = torch.tensor([0, 2, 1])
    adjusted = sample_chain(schedule, denoiser, labels, (2, 3, 3),
                            torch.Generator().manual_seed(4), adjust=adjust_step)

    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 2, 3, 3, generator=g)
    for index in range(7, -1, -1):
        t = torch.full((3, ), int(schedule.timesteps[index]))
        step = schedule.p_mean_variance(denoiser(x, t, labels), x, index)
        mean, log_variance = adjust_step(step['mean'], step['log_variance'], x, index)
        x = mean + (0.5 * log_variance).exp() * torch.randn(x.shape, generator=g) if index else mean
    torch.testing.assert_close(adjusted, x)
    plain = sample_chain(schedule, denoiser, labels, (2, 3, 3), torch.Generator().manual_seed(4))
    assert (plain - adjusted).abs().max() > 1e-2


def test_teacher_chain_with_adjust_is_the_hand_written_loop():
    """The teacher applies the hook to every chain, with the noise of an image shared by its
    classes, and keeps the adjusted steps; without the hook it keeps different ones."""
    cfg, denoiser = make()
    schedule = DiffusionSchedule(cfg, 9)
    x0 = torch.randn(2, 2, 3, 3, generator=torch.Generator().manual_seed(6))
    ids = torch.tensor([[0, 1], [2, 0]])
    chain = reverse_chain_states(schedule, denoiser, x0, ids, 2, 3,
                                 torch.Generator().manual_seed(8), adjust=adjust_step)

    g = torch.Generator().manual_seed(8)
    x = schedule.q_sample(x0, 8, torch.randn(x0.shape, generator=g))
    x = x[:, None].expand(2, 2, 2, 3, 3).reshape(4, 2, 3, 3)
    kept = {}
    for index in range(8, -1, -1):
        t = torch.full((4, ), int(schedule.timesteps[index]))
        step = schedule.p_mean_variance(denoiser(x, t, ids.reshape(-1)), x, index)
        mean, log_variance = adjust_step(step['mean'], step['log_variance'], x, index)
        kept[index] = mean.reshape(2, 2, 2, 3, 3)
        noise = torch.randn(x0.shape, generator=g).repeat_interleave(2, dim=0) if index else 0
        x = mean + (0.5 * log_variance).exp() * noise
    assert chain.index.tolist() == [6, 3, 0]
    torch.testing.assert_close(chain.mean, torch.stack([kept[s] for s in (6, 3, 0)]))
    plain = reverse_chain_states(schedule, denoiser, x0, ids, 2, 3,
                                 torch.Generator().manual_seed(8))
    assert (plain.mean - chain.mean).abs().max() > 1e-2
    torch.testing.assert_close(plain.log_variance, chain.log_variance + 0.4)


def test_reverse_steps_runs_first_index_down_to_zero():
    cfg, denoiser = make()
    schedule = DiffusionSchedule(cfg, 6)
    labels = torch.tensor([1, 2])
    calls = []

    def denoise(x_t, timestep):
        calls.append(timestep)
        return denoiser(x_t, torch.full((2, ), timestep), labels)

    x_start = torch.randn(2, 2, 3, 3)
    steps = list(reverse_steps(schedule, denoise, x_start, 3, lambda: torch.zeros(2, 2, 3, 3)))
    assert [s.index for s in steps] == [3, 2, 1, 0]
    assert [s.timestep for s in steps] == calls == schedule.timesteps[[3, 2, 1, 0]].tolist()
    # zero noise: each state is the previous step's mean, and the next step's input
    torch.testing.assert_close(steps[1].sample, steps[1].mean)
    assert steps[0].state is x_start and steps[2].state is steps[1].sample
    with pytest.raises(ValueError, match='first_index=6'):
        next(reverse_steps(schedule, denoise, x_start, 6, lambda: None))


@pytest.mark.parametrize('eta', [0.0, 0.7])
def test_ddim_sampling_is_diffusers_ddim_loop(eta):
    from diffusers import DDIMScheduler
    cfg, denoiser = make(timestep_spacing='leading')
    steps = 12
    labels = torch.tensor([1, 0, 2])
    samples = sample_chain(DiffusionSchedule(cfg, steps), denoiser, labels, (2, 3, 3),
                           torch.Generator().manual_seed(5), sampler='ddim', eta=eta)

    ddim = DDIMScheduler(num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=True,
                         timestep_spacing='leading')
    ddim.set_timesteps(steps)
    g = torch.Generator().manual_seed(5)
    x_t = torch.randn(3, 2, 3, 3, generator=g)
    for t in ddim.timesteps:
        x_t = ddim.step(denoiser(x_t, t.expand(3), labels), t, x_t, eta=eta,
                        generator=g).prev_sample
    torch.testing.assert_close(samples, x_t, rtol=1e-4, atol=1e-4)


def test_classifier_free_guidance_is_the_hand_written_combination():
    """Scale 1 is the unguided chain; scale 3 combines the class and null-class outputs of every
    step as eps_u + 3 (eps_c - eps_u), keeping the conditional variance channels."""
    cfg, denoiser = make(variance_type='learned_range')
    null = len(denoiser.means)
    denoiser.means = torch.cat([denoiser.means, torch.zeros_like(denoiser.means[:1])])
    denoiser.var_value = lambda x_t, t: torch.tanh(x_t - t.view(-1, 1, 1, 1) / 700.0)
    schedule = DiffusionSchedule(cfg, 6)
    labels = torch.tensor([0, 2])

    def chain(**kwargs):
        return sample_chain(schedule, denoiser, labels, (2, 3, 3),
                            torch.Generator().manual_seed(2), null_class=null, **kwargs)

    torch.testing.assert_close(chain(guidance_scale=1.0), chain())
    guided = chain(guidance_scale=3.0)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, 3, 3, generator=g)
    for index in range(5, -1, -1):
        t = torch.full((2, ), int(schedule.timesteps[index]))
        conditional = denoiser(x, t, labels)
        unconditional = denoiser(x, t, torch.full_like(labels, null))
        eps = unconditional[:, :2] + 3.0 * (conditional[:, :2] - unconditional[:, :2])
        step = schedule.p_mean_variance(torch.cat([eps, conditional[:, 2:]], 1), x, index)
        x = (step['mean'] + (0.5 * step['log_variance']).exp() *
             torch.randn(x.shape, generator=g)) if index else step['mean']
    torch.testing.assert_close(guided, x)
    assert (guided - chain()).abs().max() > 1e-2
    with pytest.raises(ValueError, match='null_class'):
        sample_chain(schedule, denoiser, labels, (2, 3, 3), guidance_scale=2.0)
    with pytest.raises(ValueError, match='adjust'):
        sample_chain(schedule, denoiser, labels, (2, 3, 3), sampler='ddim', adjust=adjust_step)
    with pytest.raises(ValueError, match='sampler'):
        sample_chain(schedule, denoiser, labels, (2, 3, 3), sampler='euler')

"""DiffusionSchedule against diffusers' DDPMScheduler: the reverse step's mean, variance and
predicted x_0 (Eq. 1) for the same inputs, with and without respacing, for each variance type."""
import math

import pytest
import torch
from diffusers import DDPMScheduler

from genrep.diffusion.schedule import DiffusionSchedule, gaussian_log_density
from genrep.registry import DIFFUSION_SCHEDULERS

SCHEDULES = [
    # (scheduler config, num_inference_steps)
    (dict(num_train_timesteps=1000), None),
    (dict(num_train_timesteps=1000, timestep_spacing='leading'), 50),
    (dict(num_train_timesteps=1000, timestep_spacing='leading', steps_offset=1), 50),
    (dict(num_train_timesteps=1000, timestep_spacing='trailing'), 40),
    (dict(num_train_timesteps=1000, timestep_spacing='linspace'), 30),
    (dict(num_train_timesteps=1000, beta_schedule='squaredcos_cap_v2'), 25),
    (dict(num_train_timesteps=200, beta_schedule='scaled_linear', beta_start=0.00085,
          beta_end=0.012), 20),
]


def diffusers_reverse_step(cfg, steps, model_output, x_t, timestep, seed):
    """diffusers' step for the same inputs; its mean with the sampled noise taken back out."""
    ddpm = DDPMScheduler(**cfg)
    if steps is not None:
        ddpm.set_timesteps(steps)
    out = ddpm.step(model_output, timestep, x_t, generator=torch.Generator().manual_seed(seed))
    eps, var_values = model_output.split(x_t.shape[1], dim=1) if (
        model_output.shape[1] == 2 * x_t.shape[1]) else (model_output, None)
    variance = ddpm._get_variance(timestep, predicted_variance=var_values)
    if cfg['variance_type'] == 'learned_range':
        variance = variance.exp()  # diffusers returns a log-variance for this type
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(seed))
    if timestep == 0:
        mean = out.prev_sample  # diffusers adds no noise at timestep 0
    else:
        mean = out.prev_sample - variance.sqrt() * noise
    return dict(mean=mean, variance=variance, pred_xstart=out.pred_original_sample)


@pytest.mark.parametrize('variance_type', ['fixed_small', 'fixed_large', 'learned_range'])
@pytest.mark.parametrize('cfg, steps', SCHEDULES)
def test_reverse_step_matches_diffusers(cfg, steps, variance_type):
    cfg = dict(cfg, variance_type=variance_type, clip_sample=False)
    schedule = DiffusionSchedule(cfg, steps)
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(2, 3, 4, 4, generator=g)
    channels = 6 if variance_type == 'learned_range' else 3
    model_output = torch.randn(2, channels, 4, 4, generator=g)
    if variance_type == 'learned_range':
        model_output[:, 3:] = model_output[:, 3:].tanh()
    last = schedule.num_steps - 1
    for index in sorted({0, 1, 2, last // 2, last - 1, last}):
        timestep = int(schedule.timesteps[index])
        ours = schedule.p_mean_variance(model_output, x_t, index)
        ref = diffusers_reverse_step(cfg, steps, model_output, x_t, timestep, seed=index)
        torch.testing.assert_close(ours['pred_xstart'], ref['pred_xstart'], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours['mean'], ref['mean'], rtol=1e-4, atol=1e-4)
        variance = ours['variance'].expand_as(x_t)
        if index > 0 or variance_type == 'fixed_large':
            # diffusers computes small variances in float32 with cancellation, we in float64
            torch.testing.assert_close(variance, ref['variance'].expand_as(x_t), rtol=1e-3,
                                       atol=1e-9)
        else:
            # documented difference: the zero posterior variance of the last step is clipped to
            # that of the step before it (DiT), where diffusers clamps it to 1e-20
            assert ref['variance'].min().item() < 1e-8
            min_log = schedule.posterior_variance[1].log().item()
            if variance_type == 'learned_range':
                frac = (model_output[:, 3:] + 1) / 2
                expected = (frac * schedule.betas[0].log().item() + (1 - frac) * min_log).exp()
            else:
                expected = torch.full_like(x_t, math.exp(min_log))
            torch.testing.assert_close(variance, expected, rtol=1e-4, atol=0)


def test_respaced_timesteps_are_diffusers_set_timesteps():
    for cfg, steps in SCHEDULES:
        ddpm = DDPMScheduler(**cfg)
        ddpm.set_timesteps(steps or cfg['num_train_timesteps'])
        schedule = DiffusionSchedule(cfg, steps)
        assert schedule.timesteps.tolist() == ddpm.timesteps.flip(0).tolist()
        assert schedule.num_steps == (steps or cfg['num_train_timesteps'])


def test_named_quantities_independent_formulas():
    """Respaced betas from consecutive kept timesteps; DDPM posterior coefficients."""
    schedule = DiffusionSchedule(dict(num_train_timesteps=1000), 10)
    abar = DDPMScheduler().alphas_cumprod.double()
    ts = list(range(0, 1000, 100))
    for s, t in enumerate(ts):
        prev = abar[ts[s - 1]].item() if s > 0 else 1.0
        beta = 1 - abar[t].item() / prev
        assert schedule.betas[s].item() == pytest.approx(beta, rel=1e-9)
        assert schedule.posterior_mean_coef1[s].item() == pytest.approx(
            math.sqrt(prev) * beta / (1 - abar[t].item()), rel=1e-9)
        assert schedule.posterior_mean_coef2[s].item() == pytest.approx(
            math.sqrt(1 - beta) * (1 - prev) / (1 - abar[t].item()), rel=1e-9)
    # q(x_{s-1}|x_s,x_0) mean reproduces x_0 when x_s is its noised version with no noise
    x0 = torch.randn(3, 2, dtype=torch.float64)
    for s in range(10):
        x_t = schedule.q_sample(x0, s, torch.zeros_like(x0))
        expected = schedule.sqrt_alphas_cumprod[s - 1] * x0 if s > 0 else x0
        torch.testing.assert_close(schedule.q_posterior_mean(x0, x_t, s), expected)
    torch.testing.assert_close(schedule.posterior_log_variance_clipped[0],
                               schedule.posterior_variance[1].log())


def test_clip_sample_clips_predicted_x0_as_diffusers():
    cfg = dict(num_train_timesteps=1000, clip_sample=True, clip_sample_range=0.5)
    schedule = DiffusionSchedule(cfg, 20)
    x_t = torch.randn(2, 1, 4, 4) * 3
    eps = torch.randn(2, 1, 4, 4)
    index = 10
    ours = schedule.p_mean_variance(eps, x_t, index)
    ref = diffusers_reverse_step(dict(cfg, variance_type='fixed_small'), 20, eps, x_t,
                                 int(schedule.timesteps[index]), seed=3)
    assert ours['pred_xstart'].abs().max() <= 0.5
    torch.testing.assert_close(ours['pred_xstart'], ref['pred_xstart'])
    torch.testing.assert_close(ours['mean'], ref['mean'], rtol=1e-4, atol=1e-4)


def test_learned_range_reads_extra_channels_and_checks_them():
    schedule = DiffusionSchedule(dict(variance_type='learned_range', clip_sample=False), 10)
    x_t = torch.randn(1, 2, 3, 3)
    eps = torch.randn(1, 2, 3, 3)
    for value, log_var in [(1.0, schedule.betas.log()), (-1.0, schedule.min_log_variance)]:
        out = schedule.p_mean_variance(torch.cat([eps, torch.full_like(eps, value)], 1), x_t, 4)
        torch.testing.assert_close(out['log_variance'], torch.full_like(x_t, log_var[4].item()))
        torch.testing.assert_close(out['eps'], eps)
    with pytest.raises(ValueError, match='2 x 2 channels'):
        schedule.p_mean_variance(eps, x_t, 4)
    fixed = DiffusionSchedule(dict(clip_sample=False), 10)
    with pytest.raises(ValueError, match='2 eps channels'):
        fixed.p_mean_variance(torch.cat([eps, eps], 1), x_t, 4)


def test_unsupported_configs_raise():
    with pytest.raises(ValueError, match='variance_type'):
        DiffusionSchedule(dict(variance_type='learned'))
    with pytest.raises(ValueError, match='prediction_type'):
        DiffusionSchedule(dict(prediction_type='v_prediction'))
    with pytest.raises(ValueError, match='zero terminal SNR'):
        DiffusionSchedule(dict(rescale_betas_zero_snr=True))


def test_registered_and_built_from_config():
    schedule = DIFFUSION_SCHEDULERS.build(
        dict(type='DiffusionSchedule', scheduler=dict(num_train_timesteps=100),
             num_inference_steps=10))
    assert isinstance(schedule, DiffusionSchedule) and schedule.num_steps == 10
    assert DiffusionSchedule(DDPMScheduler(num_train_timesteps=100), 5).num_steps == 5


def test_gaussian_log_density_is_normal_log_prob():
    x, mean, log_var = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    expected = torch.distributions.Normal(mean, (0.5 * log_var).exp()).log_prob(x)
    torch.testing.assert_close(gaussian_log_density(x, mean, log_var), expected)


def test_per_sample_indices_equal_scalar_indices():
    """Training draws one timestep per sample: a [N] index tensor gives, row by row, what the
    scalar index of that row gives."""
    schedule = DiffusionSchedule(
        scheduler=dict(num_train_timesteps=50, variance_type='learned_range'),
        num_inference_steps=10)
    torch.manual_seed(0)
    x_t = torch.randn(3, 2, 4, 4)
    output = torch.randn(3, 4, 4, 4).clamp(-1, 1)
    index = torch.tensor([0, 4, 9])
    batched = schedule.p_mean_variance(output, x_t, index)
    for row, i in enumerate(index.tolist()):
        single = schedule.p_mean_variance(output[row:row + 1], x_t[row:row + 1], i)
        for name in ('mean', 'log_variance', 'pred_xstart'):
            torch.testing.assert_close(batched[name][row:row + 1], single[name])
        torch.testing.assert_close(
            schedule.q_posterior_log_variance(index, x_t)[row],
            torch.full_like(x_t[row], float(schedule.posterior_log_variance_clipped[i])))
    noise = torch.randn_like(x_t)
    noised = schedule.q_sample(x_t, index, noise)
    torch.testing.assert_close(noised[1:2], schedule.q_sample(x_t[1:2], 4, noise[1:2]))


def test_respace_keeps_the_diffusion():
    full = DiffusionSchedule(scheduler=dict(num_train_timesteps=100, beta_schedule='linear'))
    short = full.respace(10)
    assert short.num_steps == 10 and full.num_steps == 100
    torch.testing.assert_close(short.alphas_cumprod, full.alphas_cumprod[short.timesteps])


def shift_step(mean, log_variance, x_t, index):
    """An ``adjust`` hook that depends on every argument, so a wrong argument or order shows."""
    scale = (torch.as_tensor(index, dtype=x_t.dtype) + 1).view(-1, *([1] * (x_t.dim() - 1)))
    return mean + 0.1 * scale * x_t, log_variance + 0.5


@pytest.mark.parametrize('variance_type', ['fixed_small', 'learned_range'])
def test_p_sample_is_the_ancestral_step(variance_type):
    """x_{s-1} = mean + exp(log_var / 2) noise for s > 0 and the mean at s = 0 (DiT), with the
    ``adjust`` hook applied to the step before sampling."""
    schedule = DiffusionSchedule(dict(num_train_timesteps=100, variance_type=variance_type), 10)
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(3, 2, 4, 4, generator=g)
    output = torch.randn(3, 4 if variance_type == 'learned_range' else 2, 4, 4, generator=g).tanh()
    noise = torch.randn(x_t.shape, generator=g)
    for index in (0, 1, 7):
        base = schedule.p_mean_variance(output, x_t, index)
        step = schedule.p_sample(output, x_t, index, noise=noise)
        expected = base['mean'] + (0.5 * base['log_variance']).exp() * noise if index else base[
            'mean']
        torch.testing.assert_close(step['sample'], expected)
        torch.testing.assert_close(step['pred_xstart'], base['pred_xstart'])
        # the hook's mean and variance are what is sampled and returned
        adjusted = schedule.p_sample(output, x_t, index, noise=noise, adjust=shift_step)
        mean, log_variance = shift_step(base['mean'], base['log_variance'], x_t, index)
        torch.testing.assert_close(adjusted['mean'], mean)
        torch.testing.assert_close(adjusted['variance'], log_variance.exp())
        expected = mean + (0.5 * log_variance).exp() * noise if index else mean
        torch.testing.assert_close(adjusted['sample'], expected)
        assert not torch.allclose(adjusted['sample'], step['sample'])


def test_p_sample_draws_from_the_generator_except_at_the_last_step():
    schedule = DiffusionSchedule(dict(num_train_timesteps=100), 10)
    x_t, output = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    drawn = schedule.p_sample(output, x_t, 5, generator=torch.Generator().manual_seed(3))
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(drawn['sample'], schedule.p_sample(output, x_t, 5, noise)['sample'])
    g = torch.Generator().manual_seed(3)
    schedule.p_sample(output, x_t, 0, generator=g)
    torch.testing.assert_close(torch.randn(x_t.shape, generator=g), noise)  # nothing drawn


def test_p_sample_per_sample_indices_equal_scalar_indices():
    schedule = DiffusionSchedule(dict(num_train_timesteps=100, variance_type='fixed_large'), 10)
    g = torch.Generator().manual_seed(1)
    x_t, output, noise = torch.randn(3, 3, 2, 4, 4, generator=g)
    index = torch.tensor([0, 4, 9])
    batched = schedule.p_sample(output, x_t, index, noise=noise, adjust=shift_step)
    for row, i in enumerate(index.tolist()):
        single = schedule.p_sample(output[row:row + 1], x_t[row:row + 1], i, noise[row:row + 1],
                                   adjust=shift_step)
        for name in ('mean', 'log_variance', 'sample'):
            torch.testing.assert_close(batched[name][row:row + 1], single[name])
    torch.testing.assert_close(batched['sample'][0], batched['mean'][0])

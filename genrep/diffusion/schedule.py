"""The noise schedule of a (respaced) DDPM and the Gaussian reverse step of Eq. 1.

Every quantity is computed once, in float64, and named as in DiT's ``gaussian_diffusion.py``; the
reverse chain and the posterior estimators read these names and never re-derive them.

The schedule is taken from a ``diffusers.DDPMScheduler`` (its ``alphas_cumprod``, its
``variance_type``, ``clip_sample`` and ``prediction_type``) and respaced to ``num_inference_steps``
steps with the scheduler's own ``set_timesteps`` (so ``timestep_spacing`` and ``steps_offset``
choose the timesteps exactly as in a diffusers pipeline). Respacing follows DiT's
``SpacedDiffusion`` and diffusers' ``DDPMScheduler.step`` alike: consecutive kept timesteps define
the respaced betas ``beta_s = 1 - abar_s / abar_{s-1}``.

Indexing: ``index`` s = 0 .. T'-1 is the position in the respaced schedule, 0 the least noisy
(DiT's ``t``). The denoiser is called at the original timestep ``timesteps[s]``; the reverse step
at index s gives p(x_{s-1} | x_s), where x_{-1} is the clean sample.

Difference from diffusers, on purpose: at index 0 the true posterior variance is 0 (diffusers
clamps it to 1e-20). A Gaussian component of Eq. 2 with variance 1e-20 has no usable density, so,
as DiT does, the log-variance there is clipped to that of index 1
(``posterior_log_variance_clipped``); this affects 'fixed_small' and the lower end of
'learned_range' at index 0 only. 'fixed_large' at index 0 is beta_0, as in diffusers.

Beside ``p_mean_variance``, as in DiT, sit the two uses of the reverse step that every caller
shares: ``p_sample`` (one ancestral step, with a hook that adjusts the step's mean and variance
first, the way GenRep's semantic noise, Eq. 6-9, enters) and ``vb_terms`` (the variational-bound
term of a step in bits per dimension, with the decoder NLL at index 0), built on the module
functions ``normal_kl``, ``discretized_gaussian_log_likelihood`` and ``gaussian_log_density``.
"""
import math
from typing import Callable, Dict, Optional, Tuple, Union

import torch
from diffusers import DDPMScheduler
from torch import Tensor

from genrep.registry import DIFFUSION_SCHEDULERS

# A respaced index s: one int for the whole batch, or a [N] tensor with one index per sample.
Index = Union[int, Tensor]

# ``adjust(mean, log_variance, x_t, index) -> (mean, log_variance)``: changes a reverse step before
# it is sampled (GenRep's semantic adjustment, Eq. 6-9); all tensors [N, C, ...].
StepAdjust = Callable[[Tensor, Tensor, Tensor, Index], Tuple[Tensor, Tensor]]

DECODERS = ('discretized', 'continuous')

VARIANCE_TYPES = ('fixed_small', 'fixed_large', 'learned_range')


def _build_ddpm_scheduler(scheduler) -> DDPMScheduler:
    """A ``DDPMScheduler`` from its config dict, itself, or any diffusers scheduler (its config)."""
    if isinstance(scheduler, DDPMScheduler):
        return DDPMScheduler.from_config(scheduler.config)
    if isinstance(scheduler, dict):
        return DDPMScheduler.from_config(dict(scheduler))
    if hasattr(scheduler, 'config'):
        return DDPMScheduler.from_config(scheduler.config)
    raise TypeError(f'DiffusionSchedule: `scheduler` must be a DDPMScheduler config dict or a '
                    f'diffusers scheduler, got {type(scheduler).__name__}')


@DIFFUSION_SCHEDULERS.register_module()
class DiffusionSchedule:
    """Named quantities of a respaced Gaussian diffusion, and its reverse step (Eq. 1).

    Args:
        scheduler: ``diffusers.DDPMScheduler`` config (dict) or scheduler. Read from it:
            ``num_train_timesteps`` and the betas, ``variance_type`` (one of 'fixed_small',
            'fixed_large', 'learned_range'), ``clip_sample``/``clip_sample_range`` (clipping of the
            predicted x_0), ``timestep_spacing``/``steps_offset`` (the respaced timesteps).
            ``prediction_type`` must be 'epsilon' (the denoisers predict noise).
        num_inference_steps: T', the number of respaced steps; ``None`` keeps all training steps.

    Attributes (all float64 tensors of shape [T'], indexed by ``index``):
        betas, alphas, alphas_cumprod, alphas_cumprod_prev, sqrt_alphas_cumprod,
        sqrt_one_minus_alphas_cumprod, sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod,
        posterior_variance, posterior_log_variance_clipped, posterior_mean_coef1 (of x_0),
        posterior_mean_coef2 (of x_t), min_log_variance, max_log_variance (the ends of the
        learned range).
        timesteps: [T'] long, the original timestep of each index (ascending).
    """

    def __init__(self, scheduler: Union[dict, DDPMScheduler, None] = None,
                 num_inference_steps: Optional[int] = None):
        ddpm = _build_ddpm_scheduler(scheduler if scheduler is not None else {})
        cfg = ddpm.config
        self.scheduler_config = dict(cfg)
        if cfg.variance_type not in VARIANCE_TYPES:
            raise ValueError(f'DiffusionSchedule: scheduler.variance_type={cfg.variance_type!r}; '
                             f'expected one of {VARIANCE_TYPES}')
        if cfg.prediction_type != 'epsilon':
            raise ValueError(f'DiffusionSchedule: scheduler.prediction_type='
                             f'{cfg.prediction_type!r}; the denoisers predict noise, expected '
                             f"'epsilon'")
        if cfg.thresholding:
            raise ValueError('DiffusionSchedule: scheduler.thresholding=True is not supported; use '
                             'clip_sample')
        self.variance_type = cfg.variance_type
        self.clip_sample = bool(cfg.clip_sample)
        self.clip_sample_range = float(cfg.clip_sample_range)
        self.num_train_timesteps = int(cfg.num_train_timesteps)

        ddpm.set_timesteps(num_inference_steps or self.num_train_timesteps)
        self.timesteps = ddpm.timesteps.flip(0).long().cpu()
        self.num_steps = len(self.timesteps)

        alphas_cumprod = ddpm.alphas_cumprod.double()[self.timesteps]
        if not bool((alphas_cumprod > 0).all()):
            raise ValueError('DiffusionSchedule: alphas_cumprod reaches 0 (zero terminal SNR); '
                             'the eps parameterisation cannot predict x_0 there')
        self._compute_named_quantities(alphas_cumprod)

    def respace(self, num_inference_steps: Optional[int]) -> 'DiffusionSchedule':
        """The same diffusion with ``num_inference_steps`` respaced steps (a sampling chain)."""
        return type(self)(scheduler=dict(self.scheduler_config),
                          num_inference_steps=num_inference_steps)

    def _compute_named_quantities(self, alphas_cumprod: Tensor) -> None:
        """DiT's ``GaussianDiffusion.__init__`` on the respaced alphas_cumprod [T']."""
        self.alphas_cumprod = alphas_cumprod
        self.alphas_cumprod_prev = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
        self.alphas = alphas_cumprod / self.alphas_cumprod_prev
        self.betas = 1.0 - self.alphas
        self.sqrt_alphas_cumprod = alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - alphas_cumprod).sqrt()
        self.sqrt_recip_alphas_cumprod = (1.0 / alphas_cumprod).sqrt()
        self.sqrt_recipm1_alphas_cumprod = (1.0 / alphas_cumprod - 1.0).sqrt()
        # q(x_{s-1} | x_s, x_0) (DDPM Eq. 6-7)
        self.posterior_variance = (self.betas * (1.0 - self.alphas_cumprod_prev) /
                                   (1.0 - alphas_cumprod))
        clipped = self.posterior_variance.clone()
        clipped[0] = self.posterior_variance[1] if self.num_steps > 1 else self.betas[0]
        self.posterior_log_variance_clipped = clipped.log()
        self.posterior_mean_coef1 = (self.betas * self.alphas_cumprod_prev.sqrt() /
                                     (1.0 - alphas_cumprod))
        self.posterior_mean_coef2 = ((1.0 - self.alphas_cumprod_prev) * self.alphas.sqrt() /
                                     (1.0 - alphas_cumprod))
        # ends of the learned range (improved DDPM Eq. 15), also the two fixed choices
        self.min_log_variance = self.posterior_log_variance_clipped
        self.max_log_variance = self.betas.log()

    # -- the forward process -------------------------------------------------------------------
    @staticmethod
    def _at(values: Tensor, index: Index, like: Tensor):
        """``values[index]`` shaped to broadcast against ``like`` [N, C, ...]: a Python float for
        an int index (one step for the whole batch), [N, 1, ...] for a [N] tensor of indices (one
        step per sample, as when training)."""
        if isinstance(index, Tensor) and index.dim() > 0:
            picked = values.to(like.device)[index.long()].to(like.dtype)
            return picked.view(-1, *([1] * (like.dim() - 1)))
        return float(values[int(index)])

    def _full(self, values: Tensor, index: Index, like: Tensor) -> Tensor:
        """``values[index]`` expanded to the shape of ``like`` (no copy)."""
        return (like.new_zeros(()) + self._at(values, index, like)).expand_as(like)

    def q_sample(self, x0: Tensor, index: Index, noise: Tensor) -> Tensor:
        """x_s = sqrt(abar_s) x_0 + sqrt(1 - abar_s) noise; same shapes as ``x0``."""
        return (self._at(self.sqrt_alphas_cumprod, index, x0) * x0 +
                self._at(self.sqrt_one_minus_alphas_cumprod, index, x0) * noise)

    # -- pieces of the reverse step ------------------------------------------------------------
    def predict_xstart_from_eps(self, x_t: Tensor, index: Index, eps: Tensor) -> Tensor:
        """x_0 = (x_s - sqrt(1 - abar_s) eps) / sqrt(abar_s), clipped when ``clip_sample``."""
        x0 = (self._at(self.sqrt_recip_alphas_cumprod, index, x_t) * x_t -
              self._at(self.sqrt_recipm1_alphas_cumprod, index, x_t) * eps)
        if self.clip_sample:
            x0 = x0.clamp(-self.clip_sample_range, self.clip_sample_range)
        return x0

    def q_posterior_mean(self, x0: Tensor, x_t: Tensor, index: Index) -> Tensor:
        """Mean of q(x_{s-1} | x_s, x_0) (DDPM Eq. 7); same shapes as ``x_t``."""
        return (self._at(self.posterior_mean_coef1, index, x_t) * x0 +
                self._at(self.posterior_mean_coef2, index, x_t) * x_t)

    def q_posterior_log_variance(self, index: Index, like: Tensor) -> Tensor:
        """log variance of q(x_{s-1} | x_s, x_0) (DDPM Eq. 7, clipped at index 0), broadcast to
        ``like``."""
        return self._full(self.posterior_log_variance_clipped, index, like)

    def learned_range_log_variance(self, var_values: Tensor, index: Index) -> Tensor:
        """log sigma^2 = frac max_log + (1 - frac) min_log, frac = (v + 1) / 2 (improved DDPM
        Eq. 15; DiT's 'learned_range'), v: the denoiser's extra channels in [-1, 1]."""
        frac = (var_values + 1.0) / 2.0
        return (frac * self._at(self.max_log_variance, index, var_values) +
                (1.0 - frac) * self._at(self.min_log_variance, index, var_values))

    def fixed_log_variance(self, index: Index, like: Tensor) -> Tensor:
        """log sigma^2 of the fixed variance types, broadcast to ``like``: posterior variance
        (clipped at index 0) for 'fixed_small', beta for 'fixed_large'."""
        values = (self.max_log_variance
                  if self.variance_type == 'fixed_large' else self.min_log_variance)
        return self._full(values, index, like)

    def split_model_output(self, output: Tensor, channels: int) -> Tuple[Tensor, Optional[Tensor]]:
        """Denoiser output -> (eps, learned-range values or None); the values are the channels
        after the first ``channels`` when ``variance_type`` is 'learned_range'."""
        if self.variance_type == 'learned_range':
            if output.shape[1] != 2 * channels:
                raise ValueError(
                    f"DiffusionSchedule: variance_type='learned_range' expects the denoiser to "
                    f'output 2 x {channels} channels (eps, variance values), got {output.shape[1]}')
            eps, var_values = output.split(channels, dim=1)
            return eps, var_values
        if output.shape[1] != channels:
            raise ValueError(f'DiffusionSchedule: variance_type={self.variance_type!r} expects '
                             f'{channels} eps channels from the denoiser, got {output.shape[1]}')
        return output, None

    # -- the reverse step (Eq. 1) --------------------------------------------------------------
    def p_mean_variance(self, model_output: Tensor, x_t: Tensor, index: int) -> Dict[str, Tensor]:
        """Mean and variance of p_theta(x_{s-1} | x_s) = N(mu, sigma^2) (Eq. 1).

        Args:
            model_output: denoiser output at (x_t, timesteps[index]), [N, C, ...] or [N, 2C, ...]
                for 'learned_range'.
            x_t: [N, C, ...] the state at ``index``.
            index: respaced index s (0 = least noisy), an int or [N] (one per sample).

        Returns:
            dict of [N, C, ...] tensors: 'mean', 'variance', 'log_variance', 'pred_xstart', 'eps'.
        """
        eps, var_values = self.split_model_output(model_output, x_t.shape[1])
        if var_values is None:
            log_variance = self.fixed_log_variance(index, x_t)
        else:
            log_variance = self.learned_range_log_variance(var_values, index)
        pred_xstart = self.predict_xstart_from_eps(x_t, index, eps)
        return dict(
            mean=self.q_posterior_mean(pred_xstart, x_t, index),
            variance=log_variance.exp(),
            log_variance=log_variance,
            pred_xstart=pred_xstart,
            eps=eps)

    def p_sample(self,
                 model_output: Tensor,
                 x_t: Tensor,
                 index: Index,
                 noise: Optional[Tensor] = None,
                 generator: Optional[torch.Generator] = None,
                 adjust: Optional[StepAdjust] = None) -> Dict[str, Tensor]:
        """One ancestral step x_{s-1} ~ p_theta(x_{s-1} | x_s) (Eq. 1), the step of every loop.

        The step's mean and log-variance (``p_mean_variance``) go through ``adjust`` when given,
        then x_{s-1} = mean + exp(log_variance / 2) noise, and x_{s-1} = mean at index 0 (DiT).

        Args:
            model_output: denoiser output at (x_t, timesteps[index]), as for ``p_mean_variance``.
            x_t: [N, C, ...] the state at ``index``.
            index: respaced index s, an int or [N] (one per sample).
            noise: [N, C, ...] standard normal noise (e.g. shared by the classes of an image);
                ``None`` draws it from ``generator``, and for an int index 0 draws nothing.
            generator: the generator of the drawn noise.
            adjust: ``adjust(mean, log_variance, x_t, index) -> (mean, log_variance)`` applied
                before sampling (GenRep's semantic adjustment, Eq. 6-9); ``None``: the base step.

        Returns:
            dict of [N, C, ...] tensors: those of ``p_mean_variance`` ('mean', 'variance' and
            'log_variance' after ``adjust``) and 'sample', x_{s-1}.
        """
        step = self.p_mean_variance(model_output, x_t, index)
        if adjust is not None:
            step['mean'], step['log_variance'] = adjust(step['mean'], step['log_variance'], x_t,
                                                        index)
            step['variance'] = step['log_variance'].exp()
        mean, log_variance = step['mean'], step['log_variance']
        per_sample = isinstance(index, Tensor) and index.dim() > 0
        if not per_sample and int(index) == 0:
            step['sample'] = mean
            return step
        if noise is None:
            noise = torch.randn(x_t.shape, generator=generator, device=x_t.device,
                                dtype=x_t.dtype)
        sample = mean + torch.exp(0.5 * log_variance) * noise
        if per_sample:
            sample = torch.where(self._at_zero(index, x_t), mean, sample)
        step['sample'] = sample
        return step

    def ddim_sample(self,
                    model_output: Tensor,
                    x_t: Tensor,
                    index: int,
                    eta: float = 0.0,
                    noise: Optional[Tensor] = None,
                    generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """One DDIM step (Song et al., 2021, Eq. 12) from respaced index s to s - 1: x_0 predicted
        (and clipped when ``clip_sample``), the noise re-derived from it, then
        x_{s-1} = sqrt(abar_{s-1}) x_0 + sqrt(1 - abar_{s-1} - sigma^2) eps + sigma z with
        sigma = eta sqrt((1 - abar_{s-1}) / (1 - abar_s)) sqrt(1 - abar_s / abar_{s-1}); eta = 0 is
        deterministic, eta = 1 the ancestral variance. A learned variance is not used. Matches
        diffusers' ``DDIMScheduler.step`` (``set_alpha_to_one``) on the same timesteps.

        Returns:
            dict of [N, C, ...] tensors: 'sample' (x_{s-1}), 'pred_xstart', 'eps'.
        """
        eps, _ = self.split_model_output(model_output, x_t.shape[1])
        pred_xstart = self.predict_xstart_from_eps(x_t, index, eps)
        eps = ((self._at(self.sqrt_recip_alphas_cumprod, index, x_t) * x_t - pred_xstart) /
               self._at(self.sqrt_recipm1_alphas_cumprod, index, x_t))
        abar = float(self.alphas_cumprod[int(index)])
        abar_prev = float(self.alphas_cumprod_prev[int(index)])
        sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        sample = math.sqrt(abar_prev) * pred_xstart + math.sqrt(1 - abar_prev - sigma**2) * eps
        if sigma > 0:
            if noise is None:
                noise = torch.randn(x_t.shape, generator=generator, device=x_t.device,
                                    dtype=x_t.dtype)
            sample = sample + sigma * noise
        return dict(sample=sample, pred_xstart=pred_xstart, eps=eps)

    @staticmethod
    def _at_zero(index: Tensor, like: Tensor) -> Tensor:
        """[N] indices -> bool [N, 1, ...]: which samples are at index 0."""
        return (index == 0).view(-1, *([1] * (like.dim() - 1))).to(like.device)

    # -- the variational bound -----------------------------------------------------------------
    def vb_terms(self,
                 x0: Tensor,
                 x_t: Tensor,
                 index: Index,
                 mean: Tensor,
                 log_variance: Tensor,
                 decoder: str = 'discretized') -> Tensor:
        """The variational-bound term of step s of the model N(mean, exp(log_variance)), in bits
        per dimension (DiT's ``_vb_terms_bpd``; improved DDPM Eq. 4-5).

        For s > 0: L_{s-1} = KL(q(x_{s-1} | x_s, x_0) || N(mean, exp(log_variance))); at s = 0:
        L_0 = -log p(x_0 | x_1), the decoder NLL. Each is averaged over the non-batch dimensions and
        divided by log 2. The mean and log-variance are arguments, not recomputed, because GenRep
        adjusts them (Eq. 6-9) before the bound.

        Args:
            x0: [N, C, ...] the clean input.
            x_t: [N, C, ...] its forward-noised state at ``index``.
            index: respaced index s, an int or [N] (one per sample, as when training).
            mean, log_variance: the model's reverse step at (x_t, index), broadcastable to x0.
            decoder: the NLL at s = 0: 'discretized' (pixels in [-1, 1] quantised to 8 bits,
                :func:`discretized_gaussian_log_likelihood`) or 'continuous' (the Gaussian density,
                for latents).

        Returns:
            [N] bits per dimension.
        """
        if decoder not in DECODERS:
            raise ValueError(f'DiffusionSchedule.vb_terms: decoder={decoder!r}; expected one of '
                             f'{DECODERS}')
        true_mean = self.q_posterior_mean(x0, x_t, index)
        true_log_variance = self.q_posterior_log_variance(index, x0)
        kl = normal_kl(true_mean, true_log_variance, mean, log_variance)
        if decoder == 'discretized':
            decoder_nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_variance)
        else:
            decoder_nll = -gaussian_log_density(x0, mean, log_variance)
        index = torch.as_tensor(index, device=x0.device).expand(x0.shape[0])
        terms = torch.where(self._at_zero(index, x0), decoder_nll, kl)
        return terms.flatten(1).mean(1) / math.log(2.0)

    # -- weights of the variational bound ------------------------------------------------------
    def elbo_eps_weights(self) -> Tensor:
        """[T'] weights lambda_s of ||eps - eps_theta||^2 in the variational bound of a
        fixed-small-variance model: L_s = beta_s^2 / (2 sigma_s^2 alpha_s (1 - abar_s)) E||.||^2
        (DDPM Eq. 12, the KL of two Gaussians with equal variance sigma_s^2; at s = 0 the Gaussian
        decoder NLL with the clipped variance, the same form)."""
        variance = self.posterior_log_variance_clipped.exp()
        return self.betas**2 / (2.0 * variance * self.alphas * (1.0 - self.alphas_cumprod))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_steps={self.num_steps}, num_train_timesteps='
                f'{self.num_train_timesteps}, variance_type={self.variance_type!r}, '
                f'clip_sample={self.clip_sample})')


def normal_kl(mean1: Tensor, log_var1: Tensor, mean2: Tensor, log_var2: Tensor) -> Tensor:
    """Elementwise KL(N(mean1, exp(log_var1)) || N(mean2, exp(log_var2))) of diagonal Gaussians,
    in nats; broadcasting shapes. The KL term of the variational bound (improved DDPM Eq. 5)."""
    return 0.5 * (-1.0 + log_var2 - log_var1 + torch.exp(log_var1 - log_var2) +
                  (mean1 - mean2)**2 * torch.exp(-log_var2))


def approx_standard_normal_cdf(x: Tensor) -> Tensor:
    """Phi(x) of the standard normal by the tanh approximation (Page, 1977) that ADM and DiT use,
    0.5 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))); elementwise, |error| < 2e-4."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(x: Tensor, means: Tensor, log_scales: Tensor) -> Tensor:
    """Elementwise log-probability of 8-bit data under N(means, exp(log_scales)^2) (DDPM Sec. 3.3,
    the decoder of ADM and DiT).

    The data lie in [-1, 1] on 256 levels, bin width 2/255: a value's probability is the Gaussian
    mass of its bin [x - 1/255, x + 1/255], with the first bin open to -inf and the last to +inf.

    Args:
        x: [N, C, ...] data in [-1, 1] (quantised to 8 bits).
        means: the Gaussians' means, broadcastable to ``x``.
        log_scales: log standard deviations (half the log-variance), broadcastable to ``x``.

    Returns:
        [N, C, ...] log-probabilities in nats (<= 0).
    """
    inv_std = torch.exp(-log_scales)
    cdf_upper = approx_standard_normal_cdf(inv_std * (x - means + 1.0 / 255.0))
    cdf_lower = approx_standard_normal_cdf(inv_std * (x - means - 1.0 / 255.0))
    # clamps: a bin far in a tail has (numerically) no mass; log(1e-12) bounds its NLL
    log_cdf_upper = cdf_upper.clamp(min=1e-12).log()
    log_survival_lower = (1.0 - cdf_lower).clamp(min=1e-12).log()
    log_bin_mass = (cdf_upper - cdf_lower).clamp(min=1e-12).log()
    return torch.where(x < -0.999, log_cdf_upper,
                       torch.where(x > 0.999, log_survival_lower, log_bin_mass))


def gaussian_log_density(x: Tensor, mean: Tensor, log_variance: Tensor) -> Tensor:
    """Elementwise log N(x; mean, exp(log_variance)) of a diagonal Gaussian (a component of Eq. 2);
    broadcasting shapes."""
    squared = (x - mean)**2 * torch.exp(-log_variance)
    return -0.5 * (math.log(2.0 * math.pi) + log_variance + squared)

"""Estimators of log p(x|y) from a class-conditional denoiser, and the posterior p(y|x) (Eq. 2-3).

One interface (:class:`PosteriorEstimator`), registered in ``POSTERIORS``:

* ``log_likelihood(denoiser, x0, class_ids) -> [B, K]``: the image-level estimate of log p(x|y)
  divided by the number of dimensions D = C x h x w it sums over (an average per-dimension
  log-likelihood).
* ``dense_log_likelihood(...) -> [B, K, h, w]``: the same per location, at the input's resolution,
  pooled over channels and divided by C.
* ``posterior(...)``: Bayes with a uniform prior (Eq. 3), softmax(normalised log-lik / tau) over the
  K given classes (dim 1).

Why per-dimension normalisation and a temperature: the log-density of a D-dimensional Gaussian
is a sum of D terms, O(D) (tens of thousands for a 4 x 64 x 64 latent), so the differences between
classes are O(D) too and softmax(log p(x|y)) is one-hot; dividing by D makes the log-likelihood an
average per dimension, O(1) whatever the resolution, and tau sets the sharpness of p(y|x). The
exact Bayes posterior of the model is recovered at tau = 1 / D.

Budget. ``class_ids`` = ``None`` is the exact mode over all classes (``num_classes`` of the
estimator or ``denoiser.num_classes``). The budgeted mode takes candidate classes per image,
[B, K] (e.g. :func:`candidate_classes`: the perception head's top-k plus the true class) or [K]
shared: classes outside the candidates get no likelihood, and Eq. 3 normalises over the
candidates, which equals the exact posterior restricted to them and renormalised
(:func:`restrict_posterior`, also for the other side of the KL). ``class_batch`` bounds how many
classes go through the denoiser at once; the number of denoiser steps is set by the schedule
(respacing T') and, for the chain, burn-in m and thinning k. All noise is drawn per image and
shared by every class, so neither the candidates nor the class batching change a class's
estimate. The noise comes from the ``generator`` of the call: a ``torch.Generator`` for the batch,
or ``SampleGenerators`` (one per image: an image's estimate then does not depend on the batch it
is in, what GenRep's training passes); without one, from the estimator's ``seed``. The teacher
side carries no gradient: estimates run under no_grad, and densities are
accumulated in float32 whatever the input's dtype.
"""
import math
from typing import Iterable, Optional, Tuple, Union

import torch
from torch import Tensor

from genrep.registry import DIFFUSION_SCHEDULERS, POSTERIORS

from .reverse_chain import (ChainArguments, chain_length, check_step_batch, denoise_classes,
                            forward_noised_steps, kept_step_indices, reverse_chain)
from .sample_generators import Generator, SampleGenerators, draw_normal
from .schedule import DiffusionSchedule, StepAdjust, gaussian_log_density


# -- one function per equation ---------------------------------------------------------------
def mixture_log_likelihood(component_log_densities: Iterable[Tensor]) -> Tensor:
    """Eq. 2 in log space: log (1/S sum_s N(x; mu_s, sigma_s)) = logsumexp_s(log N_s) - log S.

    Args:
        component_log_densities: S tensors of one shape [...], log N(x; mu_s, sigma_s) summed over
            the dimensions the density covers (or a [S, ...] tensor). Consumed one at a time, so a
            generator keeps memory at one component.

    Returns:
        [...] the log-likelihood of the equal-weight mixture.
    """
    total, count = None, 0
    for log_density in component_log_densities:
        total = log_density if total is None else torch.logaddexp(total, log_density)
        count += 1
    if total is None:
        raise ValueError('mixture_log_likelihood: no components')
    return total - math.log(count)


def bayes_posterior(log_likelihood: Tensor, temperature: float = 1.0) -> Tensor:
    """Eq. 3 with the uniform prior p(y) = 1/K, which cancels: softmax over classes (dim 1) of
    log p(x|y) / tau. Shapes: [B, K, ...] -> [B, K, ...]."""
    return torch.softmax(log_likelihood / temperature, dim=1)


def restrict_posterior(probs: Tensor, class_ids: Tensor) -> Tensor:
    """p over all N classes [B, N, ...] -> p restricted to candidates [B, K] and renormalised,
    [B, K, ...]; the two sides of the KL (Eq. 4) on the candidate subset."""
    index = class_ids.reshape(*class_ids.shape, *([1] * (probs.ndim - 2)))
    picked = probs.gather(1, index.expand(-1, -1, *probs.shape[2:]))
    return picked / picked.sum(dim=1, keepdim=True)


def candidate_classes(scores: Tensor, k: int, labels: Optional[Tensor] = None) -> Tensor:
    """Budgeted candidates: the true class (first column) plus the top-k other classes by score.

    Args:
        scores: [B, N] perception logits or probabilities.
        k: how many classes to take by score.
        labels: [B] true classes; ``None`` gives just the top-k.

    Returns:
        [B, k + 1] (or [B, k]) distinct class ids.
    """
    if labels is None:
        return scores.topk(k, dim=1).indices
    forced = scores.detach().clone()
    forced.scatter_(1, labels.reshape(-1, 1).long(), float('inf'))
    return forced.topk(min(k + 1, scores.shape[1]), dim=1).indices


# -- the estimators ----------------------------------------------------------------------------
class PosteriorEstimator:
    """Common interface: resolves classes and noise, normalises, applies Bayes (Eq. 3).

    Args:
        schedule: a :class:`DiffusionSchedule` or its config (``DIFFUSION_SCHEDULERS``).
        temperature: tau of ``posterior`` = softmax(normalised log-lik / tau).
        class_batch: classes per denoiser call; ``None``: all candidates at once.
        seed: seed of the noise when no generator is passed; ``None`` draws the seed from torch's
            global RNG (fresh noise each call, reproducible under a global seed).
        num_classes: the exact mode's class count; ``None`` reads ``denoiser.num_classes``.
    """

    def __init__(self,
                 schedule: Union[DiffusionSchedule, dict],
                 temperature: float = 1.0,
                 class_batch: Optional[int] = None,
                 seed: Optional[int] = None,
                 num_classes: Optional[int] = None):
        if isinstance(schedule, dict):
            schedule = DIFFUSION_SCHEDULERS.build(schedule)
        if temperature <= 0:
            raise ValueError(f'{type(self).__name__}: temperature must be > 0, got {temperature}')
        self.schedule = schedule
        self.temperature = temperature
        self.class_batch = class_batch
        self.seed = seed
        self.num_classes = num_classes

    def _class_ids(self, denoiser, x0: Tensor, class_ids) -> Tensor:
        """None -> all classes; [K] -> shared by the batch; [B, K] as given."""
        batch = x0.shape[0]
        if class_ids is None:
            num = self.num_classes or getattr(denoiser, 'num_classes', None)
            if num is None:
                raise ValueError(f'{type(self).__name__}: class_ids=None (exact mode) needs '
                                 f'num_classes on the estimator or the denoiser')
            class_ids = torch.arange(num)
        class_ids = torch.as_tensor(class_ids, device=x0.device).long()
        if class_ids.ndim == 1:
            class_ids = class_ids.unsqueeze(0).expand(batch, -1)
        if class_ids.ndim != 2 or class_ids.shape[0] != batch:
            raise ValueError(f'{type(self).__name__}: class_ids must be [K] or [B={batch}, K], '
                             f'got shape {tuple(class_ids.shape)}')
        return class_ids

    def _generator(self, x0: Tensor, generator: Generator) -> Generator:
        if generator is not None:
            if isinstance(generator, SampleGenerators) and len(generator) != x0.shape[0]:
                raise ValueError(f'{type(self).__name__}: {len(generator)} sample generators '
                                 f'for {x0.shape[0]} images')
            return generator
        seed = self.seed if self.seed is not None else int(torch.randint(2**62, ()).item())
        return torch.Generator(device=x0.device).manual_seed(seed)

    def num_evaluations(self) -> int:
        """Denoiser calls per (image, class) of one estimate: the teacher's cost unit."""
        raise NotImplementedError

    def _log_likelihood(self, denoiser, x0: Tensor, class_ids: Tensor,
                        generator: Generator, dense: bool,
                        adjust: Optional[StepAdjust]) -> Tensor:
        """Normalised log p(x|y): [B, K] or, when ``dense``, [B, K, h, w]."""
        raise NotImplementedError

    @torch.no_grad()
    def log_likelihood(self, denoiser, x0: Tensor, class_ids=None,
                       generator: Generator = None,
                       adjust: Optional[StepAdjust] = None) -> Tensor:
        """Image-level log p(x|y) / D for each image and class: x0 [B, C, h, w] -> [B, K].
        ``adjust``: the model's ``DiffusionSchedule.p_sample`` hook (its reverse step's
        adjustment, Eq. 6-9), for the estimators that read reverse steps."""
        return self._log_likelihood(denoiser, x0, self._class_ids(denoiser, x0, class_ids),
                                    self._generator(x0, generator), False, adjust)

    @torch.no_grad()
    def dense_log_likelihood(self, denoiser, x0: Tensor, class_ids=None,
                             generator: Generator = None,
                             adjust: Optional[StepAdjust] = None) -> Tensor:
        """Per-location log p(x_loc|y) / C: x0 [B, C, h, w] -> [B, K, h, w]."""
        return self._log_likelihood(denoiser, x0, self._class_ids(denoiser, x0, class_ids),
                                    self._generator(x0, generator), True, adjust)

    def posterior(self, denoiser, x0: Tensor, class_ids=None,
                  generator: Generator = None, dense: bool = False,
                  adjust: Optional[StepAdjust] = None) -> Tensor:
        """p(y|x) over the given classes (Eq. 3): [B, K], or [B, K, h, w] when ``dense``."""
        estimate = self.dense_log_likelihood if dense else self.log_likelihood
        return bayes_posterior(estimate(denoiser, x0, class_ids, generator, adjust),
                               self.temperature)


def _reduce(values: Tensor, dense: bool) -> Tensor:
    """[B, K, C, *spatial] -> sum over channels [B, K, *spatial] (dense) or over all [B, K]."""
    return values.sum(dim=2) if dense else values.flatten(2).sum(dim=2)


def geometric_log_likelihood(component_log_densities: Iterable[Tensor]) -> Tensor:
    """The per-step renormalised alternative to Eq. 2: the mean over the S components of
    log N(x; mu_s, sigma_s), i.e. the log of their geometric mean. Each step then counts
    equally, where in the arithmetic mixture the narrowest component's normaliser
    (-D/2 log sigma_s^2) decides which step speaks. Shapes as :func:`mixture_log_likelihood`."""
    total, count = None, 0
    for log_density in component_log_densities:
        total = log_density if total is None else total + log_density
        count += 1
    if total is None:
        raise ValueError('geometric_log_likelihood: no components')
    return total / count


def uniform_step_log_likelihood(weighted_components: Iterable[Tuple[Tensor, float]]) -> Tensor:
    """Each kept step's log-density divided by its variational-bound weight lambda_s, then
    averaged with weights 1 / lambda_s: sum_s (log N_s / lambda_s) / sum_s (1 / lambda_s).

    For the 'forward' components, log N_s is, up to a class-independent constant, -lambda_s times
    the noise-prediction error ||eps - eps_theta(x_s, s, y)||^2 (DDPM Eq. 12), so this is Li et
    al.'s uniform-weight denoising error at the chain's kept steps, and the geometric mean
    (:func:`geometric_log_likelihood`) is the same sum with the bound's weights, which put most
    weight on the least noisy steps, where one noise draw's error is most variable.
    ``weighted_components``: (log N_s, lambda_s) pairs. Shapes as :func:`mixture_log_likelihood`."""
    total, norm = None, 0.0
    for log_density, weight in weighted_components:
        term = log_density / weight
        total = term if total is None else total + term
        norm += 1.0 / weight
    if total is None:
        raise ValueError('uniform_step_log_likelihood: no components')
    return total / norm


@POSTERIORS.register_module()
class ReverseChainPosterior(PosteriorEstimator):
    """log p(x|y) from the Gaussian components N(mu_{s,y}, sigma_{s,y}) of the class-conditioned
    reverse steps at the S kept indices s (Eq. 2): two readings of where a component is taken,
    three of how the components combine.

    ``components``:

    * 'chain' (Algorithm 1 as written): the kept steps of one free-running reverse chain started
      from the input forward-noised to T'-1, and each component is evaluated at the input,
      N(x; mu_{s,y}, sigma_{s,y}).
    * 'forward': the step at index s is the reverse kernel evaluated from x_s ~ q(x_s | x), the
      input forward-noised to s (:func:`forward_noised_steps`), and the component is evaluated at
      the forward posterior mean of x_{s-1} given (x_s, x) (``DiffusionSchedule.q_posterior_mean``;
      at s = 0 that is x itself). Equivalently, up to a class-independent Jacobian, the density of
      x under the Gaussian p(x | x_s, y) that the reverse step implies in x's space.
      One denoiser call per kept step, no chain.

    ``combine``: 'mixture' (Eq. 2: log of the arithmetic mean of the densities,
    :func:`mixture_log_likelihood`), 'geometric' (the mean of the log-densities,
    :func:`geometric_log_likelihood`) or 'uniform' (the log-densities reweighted to equal weight
    per step in the noise-prediction error, :func:`uniform_step_log_likelihood`; with a learned
    variance the normaliser is reweighted too). The literal reading is ('chain', 'mixture'); the
    default ('forward', 'uniform', antithetic pairs of steps) is the one measured closest to the
    exact posterior on the analytic oracle, and of the Eq. 2 readings the best on the
    Fashion-MNIST denoiser (where the denoising error is still ahead at 20 evaluations;
    docs/decisions.md, Reverse chain; ``benchmarks/teacher.py``).

    Image level: the density of the whole input, divided by D = C h w. Dense: the same per
    location (a density of the C channels there), divided by C; for 'geometric' and 'uniform'
    the dense map averaged over locations equals the image level; for 'mixture' it does when
    S = 1 and is in general at least image level - (hw - 1) log S / D. The mixture weight is 1/S
    (Algorithm 1, line 29 divides by T//k instead; a class-independent constant, which the
    posterior ignores).

    Args:
        burn_in: m, discarded first steps of the chain.
        thinning: k, keep every k-th step afterwards (see ``reverse_chain.kept_step_indices``).
        strength: the fraction of the chain that runs (see ``reverse_chain.reverse_chain``).
        components: 'forward' or 'chain', see above.
        combine: 'geometric', 'mixture' or 'uniform', see above.
        step_batch: 'forward' components: kept steps per denoiser call (they are independent
            given the input; ``None``: all S in one call, B K S states, mind the memory at
            LDM scale). The estimate does not depend on it.
        antithetic: 'forward' components: the kept steps in pairs whose input noise is one draw
            and its negation (``reverse_chain.forward_noised_steps``); ``None`` (default): on
            for 'forward' components, where it is measured better (``benchmarks/teacher.py``,
            docs/decisions.md), and not available for 'chain'.
        other args: see :class:`PosteriorEstimator`.

    The ``adjust`` hook of the estimate (``DiffusionSchedule.p_sample``'s, ``(mean, log_variance,
    x_t, index) -> (mean, log_variance)``) is applied to every step, so the components are the
    model's adjusted reverse steps (GenRep's semantic adjustment, Eq. 6-9); ``None``: Eq. 1 as
    is. It is an argument of each call, not state: the model that owns the adjuster passes it.
    """

    COMPONENTS = ('forward', 'chain')
    COMBINE = ('geometric', 'mixture', 'uniform')

    def __init__(self, schedule, burn_in: int = 50, thinning: int = 2, strength: float = 1.0,
                 components: str = 'forward', combine: str = 'uniform',
                 step_batch: Optional[int] = 1, antithetic: Optional[bool] = None, **kwargs):
        super().__init__(schedule, **kwargs)
        # A chain that keeps no step fails here, when the config is built, not at the first call.
        kept_step_indices(chain_length(self.schedule.num_steps, strength), burn_in, thinning)
        if components not in self.COMPONENTS:
            raise ValueError(f'ReverseChainPosterior: components must be one of '
                             f'{self.COMPONENTS}, got {components!r}')
        if combine not in self.COMBINE:
            raise ValueError(f'ReverseChainPosterior: combine must be one of {self.COMBINE}, '
                             f'got {combine!r}')
        self.burn_in = burn_in
        self.thinning = thinning
        self.strength = strength
        self.components = components
        self.combine = combine
        check_step_batch(step_batch)  # at build time, not at the first call
        self.step_batch = step_batch
        if antithetic is None:  # the default: pairs for the forward-noised components
            antithetic = components == 'forward'
        if antithetic and components != 'forward':
            raise ValueError("ReverseChainPosterior: antithetic noise needs components='forward' "
                             '(a free-running chain draws its own path)')
        self.antithetic = antithetic

    def num_evaluations(self) -> int:
        """Denoiser calls per (image, class): the steps that run ('chain') or the kept ones."""
        num_steps = chain_length(self.schedule.num_steps, self.strength)
        if self.components == 'chain':
            return num_steps
        return len(kept_step_indices(num_steps, self.burn_in, self.thinning))

    def _log_likelihood(self, denoiser, x0, class_ids, generator, dense, adjust):
        chain = ChainArguments(schedule=self.schedule, denoiser=denoiser, x0=x0,
                               class_ids=class_ids, burn_in=self.burn_in, thinning=self.thinning,
                               generator=generator, class_batch=self.class_batch,
                               strength=self.strength, adjust=adjust)
        steps = (reverse_chain(**chain.as_kwargs()) if self.components == 'chain' else
                 forward_noised_steps(**chain.as_kwargs(), step_batch=self.step_batch,
                                      antithetic=self.antithetic))
        inputs = x0.unsqueeze(1).float()

        def target(step):
            if self.components == 'chain':
                return inputs
            return self.schedule.q_posterior_mean(inputs, step.state.float(), step.index)

        def component(step):
            return _reduce(gaussian_log_density(target(step), step.mean.float(),
                                                step.log_variance.float()), dense)

        dims = x0.shape[1] if dense else x0[0].numel()
        if self.combine == 'uniform':
            bound_weights = self.schedule.elbo_eps_weights()
            return uniform_step_log_likelihood(
                (component(step), float(bound_weights[step.index])) for step in steps) / dims
        combine = (mixture_log_likelihood
                   if self.combine == 'mixture' else geometric_log_likelihood)
        return combine(component(step) for step in steps) / dims


def denoising_error_log_likelihood(errors: Iterable[Tensor], weights: Iterable[float]) -> Tensor:
    """Li et al. (2023): log p(x|y) ~ -sum_s w_s E_eps ||eps - eps_theta(x_s, s, y)||^2, up to a
    class-independent constant. ``errors``: per-timestep squared errors, each [B, K, ...];
    ``weights``: w_s. Returns [B, K, ...]."""
    return -sum(w * e for w, e in zip(weights, errors))


@POSTERIORS.register_module()
class DenoisingErrorPosterior(PosteriorEstimator):
    """The diffusion classifier of Li et al. (2023), 'Your diffusion model is secretly a zero-shot
    classifier': the noise-prediction error at the schedule's T' timesteps, with ``num_noise``
    noise draws each, the same timesteps and noise for every class.

    The squared error is averaged over the D dimensions (image level; dense: over the C channels at
    each location), so the dense map averaged over locations equals the image level exactly.

    Args:
        weighting: 'uniform' (Li et al.: the mean over timesteps, w_s = 1 / T') or 'elbo' (the
            variational-bound weights lambda_s of ``DiffusionSchedule.elbo_eps_weights``, whose sum
            is the bound's class-dependent part, so log p(x|y) up to the bound's gap).
        num_noise: noise draws per timestep.
        step_batch: timesteps per denoiser call (the errors are independent given x0 and the
            noise; ``None``: all T' in one call, B K T' num_noise states). The draws, and so the
            estimate, do not depend on it.
        other args: see :class:`PosteriorEstimator`. With 'learned_range' the variance channels
            are ignored.
    """

    def __init__(self, schedule, weighting: str = 'uniform', num_noise: int = 1,
                 step_batch: Optional[int] = 1, **kwargs):
        super().__init__(schedule, **kwargs)
        if weighting not in ('uniform', 'elbo'):
            raise ValueError(f"DenoisingErrorPosterior: weighting must be 'uniform' or 'elbo', "
                             f'got {weighting!r}')
        check_step_batch(step_batch)
        self.weighting = weighting
        self.num_noise = num_noise
        self.step_batch = step_batch

    def num_evaluations(self) -> int:
        """T' timesteps x ``num_noise`` draws."""
        return self.schedule.num_steps * self.num_noise

    def timestep_weights(self) -> Tensor:
        """[T'] w_s, indexed by respaced index."""
        if self.weighting == 'elbo':
            return self.schedule.elbo_eps_weights()
        return torch.full((self.schedule.num_steps, ), 1.0 / self.schedule.num_steps,
                          dtype=torch.float64)

    def _squared_errors(self, denoiser, x0, class_ids, generator, dense):
        """Yields, per respaced index s (descending), E_eps ||eps - eps_theta||^2 / dims."""
        schedule = self.schedule
        batch, num_classes = class_ids.shape
        shape = x0.shape[1:]
        dims = x0.shape[1] if dense else x0[0].numel()
        indices = list(range(schedule.num_steps - 1, -1, -1))
        group = self.step_batch or len(indices)
        for first in range(0, len(indices), group):
            chunk = indices[first:first + group]
            # the draws in the order of one call per (index, draw): noisiest index first
            noise = torch.stack([draw_normal(x0.shape, generator, x0.device, x0.dtype)
                                 for _ in chunk for _ in range(self.num_noise)], dim=1)
            steps = torch.tensor(chunk, device=x0.device).repeat_interleave(self.num_noise)
            x_t = torch.stack([schedule.q_sample(x0, index, noise[:, j])
                               for j, index in enumerate(steps.tolist())], dim=1)
            # columns (index, draw, class): each state repeated for the K classes
            columns = x_t.unsqueeze(2).expand(batch, len(steps), num_classes, *shape)
            timesteps = schedule.timesteps.to(x0.device)[steps].repeat_interleave(num_classes)
            output = denoise_classes(denoiser, columns.flatten(1, 2), timesteps,
                                     class_ids.repeat(1, len(steps)), self.class_batch)
            eps, _ = schedule.split_model_output(output.flatten(0, 1), x0.shape[1])
            eps = eps.reshape(batch, len(chunk), self.num_noise, num_classes, *shape)
            target = noise.reshape(batch, len(chunk), self.num_noise, 1, *shape)
            errors = _reduce(((target - eps).float()**2).flatten(0, 2), dense)
            errors = errors.reshape(batch, len(chunk), self.num_noise, *errors.shape[1:])
            for position in range(len(chunk)):
                yield errors[:, position].sum(1) / (self.num_noise * dims)

    def _log_likelihood(self, denoiser, x0, class_ids, generator, dense, adjust):
        # ``adjust`` changes the reverse step's mean and variance, not eps_theta: nothing to apply.
        weights = self.timestep_weights().flip(0).tolist()
        errors = self._squared_errors(denoiser, x0, class_ids, generator, dense)
        return denoising_error_log_likelihood(errors, weights)

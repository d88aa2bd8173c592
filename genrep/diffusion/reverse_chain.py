"""The class-conditioned reverse chain with burn-in and thinning (Algorithm 1, step 1).

From the input x_0, the chain forward-noises it to its first (noisiest) respaced index T'-1
(Algorithm 1, line 14; with ``strength`` < 1, to index int(T' strength) - 1, the start of diffusers'
image-to-image chains), then runs the reverse process p_theta(x_{s-1} | x_s, y) of Eq. 1 for
s = T'-1, ..., 0, conditioned on each candidate class y, and hands back the (mean, variance) of the
kept steps: the Gaussian components of Eq. 2.

Kept steps (Algorithm 1, line 18, whose 'T mod k' we read as 't mod k' with t the 0-based respaced
index of the step's input, s): step s is kept iff

    s < T' - m   and   s % k == 0,

i.e. the first m steps of the chain (s = T'-1 .. T'-m) are burn-in, and from there every k-th step
is kept, counted so that the last step (s = 0, the mean of the clean sample) is always kept. That is
ceil((T' - m) / k) components, e.g. 75 for (T', m, k) = (200, 50, 2), as in Table 16 of the paper
(75 * 2 + 50 = 200).

Noise: one ``torch.Generator`` draws the noise of x_{T'} and of every step once per image, in the
order diffusers' DDPM sampling loop draws it ([B, C, ...] for x_{T'}, then [B, C, ...] per step
s > 0), and the same draw is used for every class, so chains of different classes differ only by
their class. The generator may instead be a :class:`~genrep.diffusion.sample_generators.
SampleGenerators`, one per image (each image then draws the same noise whatever batch it is in,
which training under data parallelism needs). Classes go through the denoiser ``class_batch`` at a time. The last step (s = 0)
moves to its mean, as in DiT (diffusers also adds noise there when the last timestep is not 0);
only means and variances enter Eq. 2.

The teacher has a second reading of the components (:func:`forward_noised_steps`): at each kept
index s the reverse kernel p_theta(x_{s-1} | x_s, y) is evaluated from x_s drawn from the forward
process q(x_s | x_0) of the input itself, not from the previous state of a free-running chain;
it needs one denoiser call per kept step and no chain (see docs/decisions.md, Reverse chain).

One loop serves both uses of the reverse process: :func:`reverse_steps` runs
``DiffusionSchedule.p_sample`` from a given state and index down to index 0; the teacher chain
(:func:`reverse_chain`) starts it from the forward-noised input, class-conditional generation
(:func:`sample_chain`) from pure noise. Both take the ``adjust`` hook of ``p_sample``, through which
GenRep's semantic adjustment of the reverse step (Eq. 6-9) enters. Sampling may instead take DDIM
steps (``DiffusionSchedule.ddim_sample``, no variance to adjust) and classifier-free guidance
(:func:`classifier_free_guidance`); the teacher always reads the ancestral steps of Eq. 1.
"""
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import torch
from torch import Tensor

from .sample_generators import Generator, draw_normal
from .schedule import DiffusionSchedule, StepAdjust


def kept_step_indices(num_steps: int, burn_in: int, thinning: int) -> List[int]:
    """Respaced indices s of the kept reverse steps, in chain order (descending).

    Args:
        num_steps: T', the chain length.
        burn_in: m, the number of discarded first steps.
        thinning: k, keep every k-th step after burn-in (the last step, s = 0, always kept).

    Returns:
        [s for s = T'-m-1, ..., 0 if s % k == 0], ceil((T' - m) / k) indices.
    """
    if thinning < 1 or burn_in < 0:
        raise ValueError(f'reverse chain: need thinning k >= 1 and burn_in m >= 0, got k='
                         f'{thinning}, m={burn_in}')
    if burn_in >= num_steps:
        raise ValueError(f'reverse chain: burn_in m={burn_in} leaves no step of a {num_steps}-step '
                         f'chain; use fewer burn-in steps or more inference steps')
    return [s for s in range(num_steps - burn_in - 1, -1, -1) if s % thinning == 0]


def chain_length(num_steps: int, strength: float) -> int:
    """Steps that run of a ``num_steps`` respaced chain started at ``strength`` (diffusers'
    image-to-image rule: ``int(num_steps * strength)``, here at least 1)."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f'reverse chain: strength must be in (0, 1], got {strength}')
    return max(1, min(num_steps, int(num_steps * strength)))


@dataclass
class ReverseStep:
    """One kept step of the chain for every (image, class).

    Attributes:
        index: respaced index s of the step's input state.
        timestep: the original timestep the denoiser saw.
        mean: mu_{s,y} of p_theta(x_{s-1} | x_s, y), [B, K, C, ...].
        log_variance: log sigma^2_{s,y}, [B, K, C, ...] (expanded, no copy, when fixed).
        sample: the state the chain moved to, x_{s-1} = mean + sigma noise (mean at s = 0).
        state: the step's input x_s, [B, K, C, ...] (expanded, no copy, when shared by classes).
    """
    index: int
    timestep: int
    mean: Tensor
    log_variance: Tensor
    sample: Tensor
    state: Optional[Tensor] = None


@dataclass
class ChainArguments:
    """What a teacher's reverse chain runs on: the arguments :func:`reverse_chain` and
    :func:`forward_noised_steps` share, named once (see :func:`reverse_chain` for each).

    Attributes:
        schedule: the respaced schedule (T' = ``schedule.num_steps``).
        denoiser: ``(x_t [N, C, ...], t [N], class_labels [N]) -> model output``.
        x0: [B, C, ...] the inputs (images or latents).
        class_ids: [B, K] the classes each image's chains are conditioned on.
        burn_in, thinning: m and k of :func:`kept_step_indices`.
        generator: the noise, shared by all classes of an image.
        class_batch: classes per denoiser call (``None``: all).
        strength: the fraction of the respaced chain that runs.
        adjust: the ``p_sample`` hook of every step (``None``: Eq. 1 as is).
    """
    schedule: DiffusionSchedule
    denoiser: torch.nn.Module
    x0: Tensor
    class_ids: Tensor
    burn_in: int
    thinning: int
    generator: Generator = None
    class_batch: Optional[int] = None
    strength: float = 1.0
    adjust: Optional[StepAdjust] = None

    def as_kwargs(self) -> Dict[str, Any]:
        """The fields as keyword arguments (the tensors themselves, not copies)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def denoise_classes(denoiser: torch.nn.Module, x_t: Tensor, timestep: Union[int, Tensor],
                    class_ids: Tensor, class_batch: Optional[int] = None) -> Tensor:
    """One denoiser call for every (image, class) pair, ``class_batch`` classes at a time.

    Args:
        x_t: [B, K, C, ...] one state per image and class.
        timestep: the original timestep, or [K] one per column (several steps in one call).
        class_ids: [B, K] long.
        class_batch: classes (columns) per denoiser call (all K when ``None``).

    Returns:
        [B, K, C_out, ...] the denoiser output.
    """
    batch, num_classes = class_ids.shape
    step = class_batch or num_classes
    outputs = []
    for start in range(0, num_classes, step):
        x_chunk = x_t[:, start:start + step]
        labels = class_ids[:, start:start + step]
        width = labels.shape[1]
        if isinstance(timestep, Tensor):
            t = timestep[start:start + step].to(x_t.device).long().expand(batch, -1).reshape(-1)
        else:
            t = torch.full((batch * width, ), timestep, dtype=torch.long, device=x_t.device)
        out = denoiser(x_chunk.reshape(batch * width, *x_t.shape[2:]), t, labels.reshape(-1))
        outputs.append(out.reshape(batch, width, *out.shape[1:]))
    return torch.cat(outputs, dim=1)


def reverse_steps(schedule: DiffusionSchedule,
                  denoise_fn: Callable[[Tensor, int], Tensor],
                  x_start: Tensor,
                  first_index: int,
                  noise_fn: Callable[[], Tensor],
                  adjust: Optional[StepAdjust] = None) -> Iterator[ReverseStep]:
    """The reverse process of Eq. 1 from x_start at ``first_index`` down to index 0, one
    ``schedule.p_sample`` a step.

    Args:
        schedule: the respaced schedule.
        denoise_fn: ``(x_t [N, C, ...], timestep) -> model output`` at the original timestep.
        x_start: [N, C, ...] the state at ``first_index``.
        first_index: respaced index s of ``x_start``, in [0, T').
        noise_fn: ``() -> [N, C, ...]`` the noise of one step, called once per step s > 0, in
            chain order (the last step moves to its mean and draws none).
        adjust: the ``p_sample`` hook ``(mean, log_variance, x_t, index) -> (mean,
            log_variance)``; ``None``: the base step.

    Yields:
        :class:`ReverseStep` for index = first_index, ..., 0 (``p_sample``'s mean, log-variance
        and sample, the input state x_s); ``sample`` is the next state.
    """
    if not 0 <= first_index < schedule.num_steps:
        raise ValueError(f'reverse chain: first_index={first_index} outside the '
                         f'{schedule.num_steps}-step schedule')
    x_t = x_start
    for index in range(first_index, -1, -1):
        timestep = int(schedule.timesteps[index])
        noise = noise_fn() if index > 0 else None
        step = schedule.p_sample(denoise_fn(x_t, timestep), x_t, index, noise=noise,
                                 adjust=adjust)
        yield ReverseStep(index, timestep, step['mean'], step['log_variance'], step['sample'],
                          x_t)
        x_t = step['sample']


def classifier_free_guidance(conditional: Tensor, unconditional: Tensor, scale: float,
                             channels: int) -> Tensor:
    """Classifier-free guidance (Ho & Salimans, 2022) of a denoiser output [N, C_out, ...]:
    eps = eps_u + scale (eps_c - eps_u) on the first ``channels`` (the noise prediction); the
    remaining channels (a learned variance) are the conditional ones, as DiT samples."""
    eps = unconditional[:, :channels] + scale * (conditional[:, :channels] -
                                                 unconditional[:, :channels])
    return torch.cat([eps, conditional[:, channels:]], dim=1)


SAMPLERS = ('ddpm', 'ddim')


def sample_chain(schedule: DiffusionSchedule,
                 denoiser: torch.nn.Module,
                 class_labels: Tensor,
                 sample_shape: Sequence[int],
                 generator: Optional[torch.Generator] = None,
                 adjust: Optional[StepAdjust] = None,
                 sampler: str = 'ddpm',
                 eta: float = 0.0,
                 guidance_scale: float = 1.0,
                 null_class: Optional[int] = None) -> Tensor:
    """Class-conditional samples x_0 from pure noise, by the ancestral reverse process (Eq. 1,
    'ddpm') or DDIM steps ('ddim', ``DiffusionSchedule.ddim_sample``), optionally guided.

    The noise is drawn from ``generator`` in the order of diffusers' sampling loops: x_{T'}
    [N, *sample_shape], then one [N, *sample_shape] per step s > 0 that adds noise (every DDPM
    step; DDIM steps only when ``eta`` > 0).

    Args:
        schedule: the (respaced) sampling schedule.
        denoiser: ``(x_t [N, C, ...], t [N], class_labels [N]) -> model output``.
        class_labels: [N] the classes to draw; the samples live on its device.
        sample_shape: (C, ...) the shape of one sample (e.g. a latent's (C, H, W)).
        generator: for reproducible samples.
        adjust: the ``p_sample`` hook (GenRep's semantic adjustment, Eq. 6-9); ``None``: off.
            DDIM steps have no variance to adjust and refuse it.
        sampler: 'ddpm' or 'ddim'.
        eta: DDIM's noise scale (0: deterministic).
        guidance_scale: classifier-free guidance scale; 1 is unguided (one denoiser call a
            step), otherwise each step also runs the ``null_class`` and combines the two
            (:func:`classifier_free_guidance`).
        null_class: the class id of the unconditional model (needed when guided).

    Returns:
        [N, *sample_shape] the samples x_0 (float32).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f'sample_chain: sampler={sampler!r}; expected one of {SAMPLERS}')
    if sampler == 'ddim' and adjust is not None:
        raise ValueError("sample_chain: sampler='ddim' has no reverse-step variance for the "
                         "semantic adjustment (adjust); use sampler='ddpm'")
    guided = guidance_scale != 1.0
    if guided and null_class is None:
        raise ValueError(f'sample_chain: guidance_scale={guidance_scale} needs the null_class')
    labels = torch.as_tensor(class_labels).long()
    shape = (len(labels), *sample_shape)
    if guided:
        both = torch.cat([labels, torch.full_like(labels, null_class)])

    def draw() -> Tensor:
        return torch.randn(shape, generator=generator, device=labels.device)

    def denoise(x_t: Tensor, timestep: int) -> Tensor:
        if not guided:
            t = torch.full((len(labels), ), timestep, dtype=torch.long, device=labels.device)
            return denoiser(x_t, t, labels)
        t = torch.full((len(both), ), timestep, dtype=torch.long, device=labels.device)
        conditional, unconditional = denoiser(torch.cat([x_t, x_t]), t, both).chunk(2)
        return classifier_free_guidance(conditional, unconditional, guidance_scale,
                                        sample_shape[0])

    x_t = draw()
    if sampler == 'ddim':
        for index in range(schedule.num_steps - 1, -1, -1):
            noise = draw() if eta > 0 and index > 0 else None
            x_t = schedule.ddim_sample(denoise(x_t, int(schedule.timesteps[index])), x_t, index,
                                       eta=eta, noise=noise)['sample']
        return x_t
    for step in reverse_steps(schedule, denoise, x_t, schedule.num_steps - 1, draw, adjust):
        x_t = step.sample
    return x_t


def reverse_chain(schedule: DiffusionSchedule,
                  denoiser: torch.nn.Module,
                  x0: Tensor,
                  class_ids: Tensor,
                  burn_in: int,
                  thinning: int,
                  generator: Generator = None,
                  class_batch: Optional[int] = None,
                  strength: float = 1.0,
                  adjust: Optional[StepAdjust] = None) -> Iterator[ReverseStep]:
    """Runs the reverse chain of every (image, class) and yields its kept steps (Algorithm 1,
    lines 14-21; kept steps as in :func:`kept_step_indices`).

    Args:
        schedule: the respaced schedule (T' = ``schedule.num_steps``).
        denoiser: ``(x_t [N, C, ...], t [N], class_labels [N]) -> eps`` (with the learned-range
            values concatenated on channels when ``schedule.variance_type`` is 'learned_range').
        x0: [B, C, ...] the inputs (images or latents).
        class_ids: [B, K] the classes to condition each image's chains on.
        burn_in, thinning: m and k.
        generator: draws x_{T'} and the step noise, shared by all classes of an image: a
            ``torch.Generator`` (``None``: torch's global one) or ``SampleGenerators`` (one per
            image).
        class_batch: classes per denoiser call.
        strength: the fraction of the respaced chain that runs, as diffusers' image-to-image
            ``strength``: the chain starts at respaced index ``chain_length(T', strength) - 1``
            and burn-in and thinning count over the steps that run. 1.0 is Algorithm 1.
        adjust: the ``p_sample`` hook ``(mean, log_variance, x_t, index) -> (mean,
            log_variance)`` on the [B K, C, ...] states of all chains (image-major); the kept
            components are the adjusted steps. ``None``: the base step of Eq. 1.

    Yields:
        :class:`ReverseStep` for each kept step, in chain order.
    """
    num_steps = chain_length(schedule.num_steps, strength)
    kept = set(kept_step_indices(num_steps, burn_in, thinning))
    batch, num_classes = class_ids.shape
    if x0.shape[0] != batch:
        raise ValueError(
            f'reverse chain: x0 has {x0.shape[0]} images but class_ids has {batch} rows')

    chains = (batch, num_classes, *x0.shape[1:])

    def shared_noise() -> Tensor:
        """[B K, C, ...]: one draw per image, the same for each of its classes."""
        noise = draw_normal(x0.shape, generator, x0.device, x0.dtype)
        return noise.unsqueeze(1).expand(chains).flatten(0, 1)

    def denoise(x_t: Tensor, timestep: int) -> Tensor:
        output = denoise_classes(denoiser, x_t.reshape(chains), timestep, class_ids, class_batch)
        return output.flatten(0, 1)

    first = num_steps - 1
    x_start = schedule.q_sample(x0.repeat_interleave(num_classes, dim=0), first, shared_noise())
    for step in reverse_steps(schedule, denoise, x_start, first, shared_noise, adjust):
        if step.index in kept:
            yield ReverseStep(step.index, step.timestep, step.mean.reshape(chains),
                              step.log_variance.reshape(chains), step.sample.reshape(chains),
                              step.state.reshape(chains))


def check_step_batch(step_batch: Optional[int]) -> None:
    """Kept steps per denoiser call of :func:`forward_noised_steps`: >= 1, or ``None`` (all)."""
    if step_batch is not None and step_batch < 1:
        raise ValueError(f'reverse chain: step_batch must be >= 1 or None, got {step_batch}')


def forward_noised_steps(schedule: DiffusionSchedule,
                         denoiser: torch.nn.Module,
                         x0: Tensor,
                         class_ids: Tensor,
                         burn_in: int,
                         thinning: int,
                         generator: Generator = None,
                         class_batch: Optional[int] = None,
                         strength: float = 1.0,
                         adjust: Optional[StepAdjust] = None,
                         step_batch: Optional[int] = 1,
                         antithetic: bool = False) -> Iterator[ReverseStep]:
    """The reverse kernel p_theta(x_{s-1} | x_s, y) at the kept indices s of the chain, each
    evaluated from x_s = q_sample(x0, s, noise) (the input forward-noised to s) rather than from
    a free-running chain; the other arguments are those of :func:`reverse_chain`.

    Noise: one [B, C, ...] draw per kept step (in chain order, noisiest first) for x_s, and one
    for the step's sample, both shared by the classes of an image. The kept steps are independent
    given x0, so ``step_batch`` of them share one denoiser call (B K ``step_batch`` states;
    ``None``: all S kept steps at once; ``class_batch`` still bounds the classes x steps per
    call). The draws and the results do not depend on ``step_batch``. ``antithetic``: the kept
    steps go in pairs, the second of a pair noised with the negation of the first's draw for x_s
    (antithetic variates: where the class-dependent part of a step's error is near-linear in the
    noise, the pair's sum cancels it; the sample draws stay independent).

    Yields:
        :class:`ReverseStep` for each kept index, in chain order; ``state`` is x_s.
    """
    num_steps = chain_length(schedule.num_steps, strength)
    kept = kept_step_indices(num_steps, burn_in, thinning)
    batch, num_classes = class_ids.shape
    if x0.shape[0] != batch:
        raise ValueError(
            f'reverse chain: x0 has {x0.shape[0]} images but class_ids has {batch} rows')
    chains = (batch, num_classes, *x0.shape[1:])

    def draw() -> Tensor:
        return draw_normal(x0.shape, generator, x0.device, x0.dtype)

    check_step_batch(step_batch)
    group = step_batch or len(kept)
    paired = None  # the draw of the first step of an antithetic pair
    for first in range(0, len(kept), group):
        indices = kept[first:first + group]
        states, noises = [], []
        for position, index in enumerate(indices, first):  # chain order, one step at a time
            if antithetic and position % 2 == 1:
                state_noise = -paired
            else:
                state_noise = paired = draw()
            states.append(schedule.q_sample(x0, index, state_noise))
            noises.append(draw() if index > 0 else None)
        # Columns (step j, class k) -> j K + k: every step's state against every class.
        columns = torch.stack(states, 1).unsqueeze(2).expand(
            batch, len(indices), num_classes, *x0.shape[1:]).flatten(1, 2)
        timesteps = torch.tensor([int(schedule.timesteps[i]) for i in indices])
        outputs = denoise_classes(denoiser, columns, timesteps.repeat_interleave(num_classes),
                                  class_ids.repeat(1, len(indices)), class_batch)
        outputs = outputs.unflatten(1, (len(indices), num_classes))
        for j, index in enumerate(indices):
            x_s = states[j].unsqueeze(1).expand(chains)
            noise = (noises[j].unsqueeze(1).expand(chains).flatten(0, 1)
                     if noises[j] is not None else None)
            step = schedule.p_sample(outputs[:, j].flatten(0, 1), x_s.flatten(0, 1), index,
                                     noise=noise, adjust=adjust)
            yield ReverseStep(index, int(timesteps[j]), step['mean'].reshape(chains),
                              step['log_variance'].reshape(chains),
                              step['sample'].reshape(chains), x_s)


def stack_steps(steps: Iterable[ReverseStep]) -> ReverseStep:
    """Kept steps stacked on a leading axis: ``index`` and ``timestep`` become [S] tensors, the
    others [S, B, K, C, ...] (S kept steps)."""
    steps = list(steps)
    return ReverseStep(
        index=torch.tensor([s.index for s in steps]),
        timestep=torch.tensor([s.timestep for s in steps]),
        mean=torch.stack([s.mean for s in steps]),
        log_variance=torch.stack([s.log_variance for s in steps]),
        sample=torch.stack([s.sample for s in steps]),
        state=torch.stack([s.state for s in steps]))


def reverse_chain_states(*args, **kwargs) -> ReverseStep:
    """:func:`reverse_chain` (the same arguments) with its kept steps stacked
    (:func:`stack_steps`)."""
    return stack_steps(reverse_chain(*args, **kwargs))

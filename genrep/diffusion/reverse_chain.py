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
their class. Classes go through the denoiser ``class_batch`` at a time. The last step (s = 0)
moves to its mean, as in DiT (diffusers also adds noise there when the last timestep is not 0);
only means and variances enter Eq. 2.
"""
from dataclasses import dataclass
from typing import Iterator, List, Optional

import torch
from torch import Tensor

from .schedule import DiffusionSchedule


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
    """
    index: int
    timestep: int
    mean: Tensor
    log_variance: Tensor
    sample: Tensor


def denoise_classes(denoiser: torch.nn.Module, x_t: Tensor, timestep: int, class_ids: Tensor,
                    class_batch: Optional[int] = None) -> Tensor:
    """One denoiser call for every (image, class) pair, ``class_batch`` classes at a time.

    Args:
        x_t: [B, K, C, ...] one state per image and class.
        timestep: the original timestep.
        class_ids: [B, K] long.
        class_batch: classes per denoiser call (all K when ``None``).

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
        t = torch.full((batch * width, ), timestep, dtype=torch.long, device=x_t.device)
        out = denoiser(x_chunk.reshape(batch * width, *x_t.shape[2:]), t, labels.reshape(-1))
        outputs.append(out.reshape(batch, width, *out.shape[1:]))
    return torch.cat(outputs, dim=1)


def reverse_chain(schedule: DiffusionSchedule,
                  denoiser: torch.nn.Module,
                  x0: Tensor,
                  class_ids: Tensor,
                  burn_in: int,
                  thinning: int,
                  generator: Optional[torch.Generator] = None,
                  class_batch: Optional[int] = None,
                  strength: float = 1.0) -> Iterator[ReverseStep]:
    """Runs the reverse chain of every (image, class) and yields its kept steps (Algorithm 1,
    lines 14-21; kept steps as in :func:`kept_step_indices`).

    Args:
        schedule: the respaced schedule (T' = ``schedule.num_steps``).
        denoiser: ``(x_t [N, C, ...], t [N], class_labels [N]) -> eps`` (with the learned-range
            values concatenated on channels when ``schedule.variance_type`` is 'learned_range').
        x0: [B, C, ...] the inputs (images or latents).
        class_ids: [B, K] the classes to condition each image's chains on.
        burn_in, thinning: m and k.
        generator: draws x_{T'} and the step noise, shared by all classes of an image.
        class_batch: classes per denoiser call.
        strength: the fraction of the respaced chain that runs, as diffusers' image-to-image
            ``strength``: the chain starts at respaced index ``chain_length(T', strength) - 1``
            and burn-in and thinning count over the steps that run. 1.0 is Algorithm 1.

    Yields:
        :class:`ReverseStep` for each kept step, in chain order.
    """
    num_steps = chain_length(schedule.num_steps, strength)
    kept = set(kept_step_indices(num_steps, burn_in, thinning))
    batch, num_classes = class_ids.shape
    if x0.shape[0] != batch:
        raise ValueError(
            f'reverse chain: x0 has {x0.shape[0]} images but class_ids has {batch} rows')

    def shared_noise() -> Tensor:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return noise.unsqueeze(1).expand(batch, num_classes, *x0.shape[1:])

    first = num_steps - 1
    x_t = schedule.q_sample(x0.unsqueeze(1), first, shared_noise())
    for index in range(first, -1, -1):
        timestep = int(schedule.timesteps[index])
        output = denoise_classes(denoiser, x_t, timestep, class_ids, class_batch)
        flat = schedule.p_mean_variance(
            output.flatten(0, 1), x_t.flatten(0, 1), index)
        mean = flat['mean'].view_as(x_t)
        log_variance = flat['log_variance'].reshape(x_t.shape)
        if index > 0:
            x_prev = mean + torch.exp(0.5 * log_variance) * shared_noise()
        else:
            x_prev = mean
        if index in kept:
            yield ReverseStep(index, timestep, mean, log_variance, x_prev)
        x_t = x_prev


def reverse_chain_states(schedule: DiffusionSchedule,
                         denoiser: torch.nn.Module,
                         x0: Tensor,
                         class_ids: Tensor,
                         burn_in: int,
                         thinning: int,
                         generator: Optional[torch.Generator] = None,
                         class_batch: Optional[int] = None,
                         strength: float = 1.0) -> ReverseStep:
    """:func:`reverse_chain` with its kept steps stacked on a leading axis: ``index`` and
    ``timestep`` become [S] tensors, the others [S, B, K, C, ...] (S kept steps)."""
    steps = list(reverse_chain(schedule, denoiser, x0, class_ids, burn_in, thinning, generator,
                               class_batch, strength))
    return ReverseStep(
        index=torch.tensor([s.index for s in steps]),
        timestep=torch.tensor([s.timestep for s in steps]),
        mean=torch.stack([s.mean for s in steps]),
        log_variance=torch.stack([s.log_variance for s in steps]),
        sample=torch.stack([s.sample for s in steps]))

"""Semantic-aware noise adjustment of the reverse step (Eq. 6-9).

The base reverse step N(mu, sigma^2) (Eq. 1, ``DiffusionSchedule.p_mean_variance``) is modulated by
a semantic representation x_sem:

* mean (Eq. 6-7): mu' = mu + W_t concat(x_t, x_sem), W_t a [C, C + C_sem] matrix per timestep
  applied at every location (a 1x1 convolution whose weights depend on t). The T matrices are one
  parameter [T, C, C + C_sem]; each sample's matrix is picked by its timestep and applied with one
  einsum for the whole batch.
* variance (Eq. 8-9): sigma'^2 = sigma^2 (1 + f_sigma), f_sigma = MLP(global average of x_sem), one
  scalar per sample. Kept positive by parameterising 1 + f_sigma = exp(s), s = b tanh(m / b), with m
  the MLP output and b = ``max_log_scale``: the variance scale stays in [e^-b, e^b], it is smooth,
  s ~ m near 0, and the adjuster works in log-variance space as the schedule does:
  log sigma'^2 = log sigma^2 + s.

Both corrections start at exactly zero (W = 0, last MLP layer = 0), so the adjusted model starts
as the base model.

Timesteps: W is indexed by the *original* diffusion timestep (0 .. num_train_timesteps - 1), the
``t`` the denoiser is called with, not by the position in a respaced chain; training samples
original timesteps, and a respaced sampler passes ``schedule.timesteps[index]``, so the same W_t
serves both.

Inference (Sec. 3.2, end): x_sem is replaced by the current noisy sample x_t; ``x_sem=None`` does
that, which requires C_sem == C.
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from genrep.registry import MODELS

from .schedule import StepAdjust


def semantic_mean_correction(x_t: Tensor, x_sem: Tensor, weight: Tensor) -> Tensor:
    """f_sem^mu(x_t, x_sem) = W_t concat(x_t, x_sem) (Eq. 7), at every location.

    Args:
        x_t: [B, C, *S] the noisy sample.
        x_sem: [B, C_sem, *S] the semantic representation on the same grid.
        weight: [B, C, C + C_sem], W_t at each sample's timestep.

    Returns:
        [B, C, *S], the correction added to the base mean (Eq. 6).
    """
    joint = torch.cat([x_t, x_sem], dim=1)
    return torch.einsum('boc,bc...->bo...', weight.to(joint.dtype), joint)


def semantic_log_variance_scale(mlp_output: Tensor, max_log_scale: float) -> Tensor:
    """log(1 + f_sem^sigma) of Eq. 8 from the MLP output of Eq. 9, kept positive and bounded:
    1 + f = exp(b tanh(m / b)), b = ``max_log_scale``. Shapes: m [B] -> [B]; 0 -> 0 (scale 1)."""
    return max_log_scale * torch.tanh(mlp_output / max_log_scale)


@MODELS.register_module()
class SemanticNoiseAdjuster(nn.Module):
    """Semantic correction of the reverse step's mean (Eq. 6-7) and variance (Eq. 8-9).

    Args:
        in_channels: C, channels of x_t (and of the mean and log-variance).
        num_timesteps: T, the number of original diffusion timesteps (``num_train_timesteps``);
            one W_t each.
        sem_channels: C_sem, channels of x_sem; ``None``: C (needed for ``x_sem=None``).
        hidden_channels: width of the hidden layer of the variance MLP (Eq. 9).
        max_log_scale: b, the bound of |log(1 + f_sigma)|.
    """

    def __init__(self,
                 in_channels: int,
                 num_timesteps: int = 1000,
                 sem_channels: Optional[int] = None,
                 hidden_channels: int = 256,
                 max_log_scale: float = 1.0):
        super().__init__()
        if max_log_scale <= 0:
            raise ValueError(f'SemanticNoiseAdjuster: max_log_scale must be > 0, got '
                             f'{max_log_scale}')
        self.in_channels = in_channels
        self.sem_channels = in_channels if sem_channels is None else sem_channels
        self.num_timesteps = num_timesteps
        self.max_log_scale = max_log_scale
        # W_t of Eq. 7 for every timestep; zero: the base mean is unchanged at the start
        self.mean_weight = nn.Parameter(
            torch.zeros(num_timesteps, in_channels, in_channels + self.sem_channels))
        self.variance_mlp = nn.Sequential(
            nn.Linear(self.sem_channels, hidden_channels), nn.SiLU(),
            nn.Linear(hidden_channels, 1))
        # zero last layer: f_sigma = 0, the base variance is unchanged at the start
        nn.init.zeros_(self.variance_mlp[-1].weight)
        nn.init.zeros_(self.variance_mlp[-1].bias)

    def _timesteps(self, timesteps: Union[int, Tensor], batch_size: int, device) -> Tensor:
        """int, scalar or [B] original timesteps -> [B] long, checked against num_timesteps."""
        timesteps = torch.as_tensor(timesteps, device=device).long()
        if timesteps.dim() == 0:
            timesteps = timesteps.expand(batch_size)
        if timesteps.shape != (batch_size, ):
            raise ValueError(f'SemanticNoiseAdjuster: timesteps must be an int or [{batch_size}], '
                             f'got shape {tuple(timesteps.shape)}')
        if bool(((timesteps < 0) | (timesteps >= self.num_timesteps)).any()):
            raise ValueError(f'SemanticNoiseAdjuster: timesteps must be original diffusion '
                             f'timesteps in [0, {self.num_timesteps}), got {timesteps.tolist()}')
        return timesteps

    def _semantic_input(self, x_t: Tensor, x_sem: Optional[Tensor]) -> Tensor:
        """x_sem checked and on x_t's grid; x_t itself when ``None`` (inference, Sec. 3.2)."""
        if x_t.dim() < 3 or x_t.shape[1] != self.in_channels:
            raise ValueError(f'SemanticNoiseAdjuster: x_t must be [B, {self.in_channels}, ...], '
                             f'got {tuple(x_t.shape)}')
        if x_sem is None:
            if self.sem_channels != self.in_channels:
                raise ValueError(
                    f'SemanticNoiseAdjuster: x_sem=None substitutes x_t for x_sem (inference, '
                    f'Sec. 3.2), which needs sem_channels == in_channels; got sem_channels='
                    f'{self.sem_channels}, in_channels={self.in_channels}')
            return x_t
        if (x_sem.dim() != x_t.dim() or x_sem.shape[0] != x_t.shape[0]
                or x_sem.shape[1] != self.sem_channels):
            raise ValueError(f'SemanticNoiseAdjuster: x_sem must be [{x_t.shape[0]}, '
                             f'{self.sem_channels}, ...] like x_t {tuple(x_t.shape)}, got '
                             f'{tuple(x_sem.shape)}')
        if x_sem.shape[2:] != x_t.shape[2:]:
            # a coarser feature map: Eq. 7 pairs x_sem with x_t location by location
            x_sem = F.interpolate(x_sem, size=x_t.shape[2:], mode='bilinear', align_corners=False)
        return x_sem

    def mean_correction(self, x_t: Tensor, timesteps: Union[int, Tensor],
                        x_sem: Optional[Tensor] = None) -> Tensor:
        """f_sem^mu (Eq. 7): [B, C, *S]."""
        x_sem = self._semantic_input(x_t, x_sem)
        weight = self.mean_weight[self._timesteps(timesteps, x_t.shape[0], x_t.device)]
        return semantic_mean_correction(x_t, x_sem, weight)

    def log_variance_scale(self, x_sem: Tensor) -> Tensor:
        """log(1 + f_sem^sigma) (Eq. 8-9): global average of x_sem [B, C_sem, *S] -> MLP -> [B]."""
        pooled = x_sem.flatten(2).mean(dim=2)
        mlp_output = self.variance_mlp(pooled.to(self.variance_mlp[0].weight.dtype)).squeeze(1)
        return semantic_log_variance_scale(mlp_output, self.max_log_scale)

    def forward(self,
                mean: Tensor,
                log_variance: Tensor,
                x_t: Tensor,
                timesteps: Union[int, Tensor],
                x_sem: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """The adjusted reverse step.

        Args:
            mean: mu^base [B, C, *S] (``p_mean_variance(...)['mean']``).
            log_variance: log sigma^2 of the base step, [B, C, *S] or broadcastable to it.
            x_t: [B, C, *S] the current sample.
            timesteps: original diffusion timestep(s) of x_t, an int or [B].
            x_sem: [B, C_sem, *S'] the semantic representation; ``None``: x_t (inference).

        Returns:
            (mu', log sigma'^2): mu + f_mu (Eq. 6) and log sigma^2 + log(1 + f_sigma) (Eq. 8), each
            [B, C, *S].
        """
        if mean.shape != x_t.shape:
            raise ValueError(f'SemanticNoiseAdjuster: mean {tuple(mean.shape)} and x_t '
                             f'{tuple(x_t.shape)} must have the same shape')
        x_sem = self._semantic_input(x_t, x_sem)
        adjusted_mean = mean + self.mean_correction(x_t, timesteps, x_sem)
        log_scale = self.log_variance_scale(x_sem).view(-1, *([1] * (x_t.dim() - 1)))
        adjusted_log_variance = log_variance + log_scale.to(log_variance.dtype)
        return adjusted_mean, adjusted_log_variance.expand_as(mean)

    def step_hook(self, schedule) -> StepAdjust:
        """The adjustment at inference (x_sem := x_t) as a ``DiffusionSchedule.p_sample`` hook on
        ``schedule``'s respaced steps: ``(mean, log_variance, x_t, index) -> (mean,
        log_variance)``, ``index`` an int or [B] respaced indices."""

        def adjust(mean: Tensor, log_variance: Tensor, x_t: Tensor, index):
            if isinstance(index, Tensor) and index.dim() > 0:
                timestep = schedule.timesteps.to(x_t.device)[index.long()]
            else:
                timestep = int(schedule.timesteps[int(index)])
            return self(mean, log_variance, x_t, timestep)

        return adjust

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, sem_channels={self.sem_channels}, '
                f'num_timesteps={self.num_timesteps}, max_log_scale={self.max_log_scale}')

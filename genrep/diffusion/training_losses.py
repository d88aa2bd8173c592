"""The diffusion training loss of one batch (the counterpart of DiT's ``training_losses``).

Improved DDPM's hybrid loss: the noise-prediction MSE trains the mean (through eps), and the
variational-bound term (``DiffusionSchedule.vb_terms``, weighted by ``vlb_weight``) trains what the
MSE cannot: a learned variance and, through the ``adjust`` hook, a model's adjustment of the
reverse step (GenRep's semantic adjustment, Eq. 6-9). The bound sees eps detached, so it does not
pull on the mean.

The random draws of a batch, in this order (each from the batch's ``SampleGenerators``, one per
sample): the label dropout to the null class (classifier-free), the respaced timestep index, the
noise. Keeping the order keeps a seeded run's numbers.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .sample_generators import SampleGenerators
from .schedule import DiffusionSchedule

# (mean, log_variance, x_t, index [B], timesteps [B], class_labels [B]) -> (mean, log_variance):
# the adjustment of the reverse step in the bound term, which may read the step's class labels
# (GenRep's x_sem is the semantic denoiser's prediction at (x_t, t, y)).
TrainingAdjust = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor], Tuple[Tensor, Tensor]]


@dataclass
class DiffusionTrainingLosses:
    """The diffusion loss terms of a batch and what the denoiser saw.

    Attributes:
        mse: the noise-prediction loss, a scalar: the MSE, or the mean absolute error with
            ``eps_loss='l1'`` (latent-diffusion's ``loss_type: l1``).
        vlb: the weighted variational-bound term, a scalar; ``None`` where it trains nothing (a
            fixed variance and no adjustment) or ``vlb_weight`` is 0.
        features: the denoiser's decoder features of x_t (``DenoiserOutput.features``).
        class_labels: [B] the labels the denoiser was conditioned on, after the dropout.
    """
    mse: Tensor
    vlb: Optional[Tensor]
    features: Tuple[Tensor, ...]
    class_labels: Tensor


def training_losses(schedule: DiffusionSchedule,
                    denoiser: torch.nn.Module,
                    x0: Tensor,
                    class_labels: Tensor,
                    generators: SampleGenerators,
                    null_class: int,
                    label_dropout: float = 0.1,
                    vlb_weight: float = 1.0,
                    decoder: str = 'discretized',
                    adjust: Optional[TrainingAdjust] = None,
                    eps_loss: str = 'mse') -> DiffusionTrainingLosses:
    """The hybrid diffusion loss of x0 (see the module docstring).

    Args:
        schedule: the training schedule (all T steps).
        denoiser: a ``DiffusersDenoiser`` (``forward_features``, ``var_values`` when learned).
        x0: [B, C, ...] clean inputs (images or latents), no gradient needed.
        class_labels: [B] their classes.
        generators: the batch's per-sample generators (label dropout, timestep, noise).
        null_class: the class id of the unconditional model.
        label_dropout: probability of conditioning a sample on ``null_class``.
        vlb_weight: weight of the bound term.
        decoder: the bound's t = 0 term, 'discretized' (images) or 'continuous' (latents).
        adjust: the reverse step's adjustment in the bound term; ``None``: Eq. 1 as is.
        eps_loss: 'mse' (DiT, improved DDPM) or 'l1' (latent-diffusion's loss_type l1).
    """
    if eps_loss not in ('mse', 'l1'):
        raise ValueError(f"training_losses: eps_loss must be 'mse' or 'l1', got {eps_loss!r}")
    drop = generators.rand() < label_dropout
    labels = torch.where(drop, torch.full_like(class_labels, null_class), class_labels)
    index = generators.randint(schedule.num_steps)
    timesteps = schedule.timesteps.to(x0.device)[index]
    noise = generators.randn(x0.shape, x0.dtype)
    x_t = schedule.q_sample(x0, index, noise)

    out = denoiser.forward_features(x_t, timesteps, labels)
    mse = F.mse_loss(out.eps, noise) if eps_loss == 'mse' else F.l1_loss(out.eps, noise)
    vlb = None
    if vlb_weight > 0 and (out.var_values is not None or adjust is not None):
        output = out.eps.detach() if out.var_values is None else torch.cat(
            [out.eps.detach(), out.var_values], dim=1)
        step = schedule.p_mean_variance(output, x_t, index)
        mean, log_var = step['mean'], step['log_variance']
        if adjust is not None:
            mean, log_var = adjust(mean, log_var, x_t, index, timesteps, labels)
        vlb = vlb_weight * schedule.vb_terms(x0, x_t, index, mean, log_var, decoder=decoder).mean()
    return DiffusionTrainingLosses(mse=mse, vlb=vlb, features=out.features, class_labels=labels)


@torch.no_grad()
def predicted_xstart(schedule: DiffusionSchedule, denoiser: torch.nn.Module, x_t: Tensor,
                     index: Tensor, timesteps: Tensor, class_labels: Tensor) -> Tensor:
    """The denoiser's predicted x_0 at (x_t, t, y), in x_t's space, no gradient (GenRep's x_sem
    that steers the reverse step, Eq. 6-9, from the semantic denoiser)."""
    eps, _ = denoiser.split_output(denoiser(x_t, timesteps, class_labels))
    return schedule.predict_xstart_from_eps(x_t, index, eps)

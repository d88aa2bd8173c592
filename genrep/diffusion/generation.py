"""Class-conditional generation from a denoiser: the reverse chain (``sample_chain``) from the
denoiser's configured sample shape, decoded by the VAE where the denoiser works in a latent
space."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from .reverse_chain import sample_chain
from .schedule import DiffusionSchedule, StepAdjust


def sample_shape(denoiser: torch.nn.Module) -> Tuple[int, ...]:
    """(C, H, W) of one x_T: the denoiser's input channels and configured ``sample_size``."""
    size = denoiser.model.config.sample_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    return (denoiser.in_channels, *size)


@torch.no_grad()
def generate(denoiser: torch.nn.Module,
             class_labels: Tensor,
             schedule: DiffusionSchedule,
             vae: Optional[torch.nn.Module] = None,
             generator: Optional[torch.Generator] = None,
             latent_shape: Optional[Sequence[int]] = None,
             adjust: Optional[StepAdjust] = None,
             sampler: str = 'ddpm',
             eta: float = 0.0,
             guidance_scale: float = 1.0) -> Tensor:
    """Samples of ``class_labels`` [N] by the reverse chain (Eq. 1) on ``schedule``, with the
    reverse step's ``adjust`` hook (``None``: none; 'ddim' refuses one); ``latent_shape``: (C, H,
    W) of x_T, default :func:`sample_shape`. Returns [N, C, H, W] on the denoiser's device,
    decoded by ``vae`` (``x / scaling_factor``) when given."""
    device = next(denoiser.parameters()).device
    labels = torch.as_tensor(class_labels, device=device).long()
    shape = sample_shape(denoiser) if latent_shape is None else latent_shape
    x = sample_chain(schedule, denoiser, labels, shape,
                     generator=generator, adjust=adjust, sampler=sampler, eta=eta,
                     guidance_scale=guidance_scale, null_class=denoiser.null_class_id)
    if vae is not None:
        x = vae.decode(x / vae.config.scaling_factor).sample
    return x

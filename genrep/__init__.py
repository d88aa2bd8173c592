"""genrep: one diffusion denoiser for visual perception and generation (GenRep), as OpenMMLab plugins."""
from . import compat
from .version import __version__

# Before anything imports torchvision or loads a checkpoint (see compat.py for each fix).
compat.apply_all()

__all__ = ['__version__']

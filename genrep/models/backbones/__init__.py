from .diffusion_backbone import DiffusionBackbone

__all__ = ['DiffusionBackbone']

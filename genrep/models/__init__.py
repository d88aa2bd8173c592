from .backbones import DiffusionBackbone

__all__ = ['DiffusionBackbone']

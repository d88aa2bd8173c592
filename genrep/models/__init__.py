from .backbones import DiffusionBackbone
from .losses import GenerativeDistillationLoss, RepAlignLoss

__all__ = ['DiffusionBackbone', 'GenerativeDistillationLoss', 'RepAlignLoss']

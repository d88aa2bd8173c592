from .backbones import DiffusionBackbone
from .genrep import GenRep
from .losses import GenerativeDistillationLoss, RepAlignLoss

__all__ = ['DiffusionBackbone', 'GenRep', 'GenerativeDistillationLoss', 'RepAlignLoss']

from . import heads, text_encoders  # noqa: F401 (registers the text-embedding heads and encoders)
from .backbones import DiffusionBackbone
from .genrep import GenRep
from .losses import GenerativeDistillationLoss, RepAlignLoss
from .tasks import ClassificationAdapter, SegmentationAdapter, TaskAdapter

__all__ = [
    'DiffusionBackbone', 'GenRep', 'GenerativeDistillationLoss', 'RepAlignLoss',
    'ClassificationAdapter', 'SegmentationAdapter', 'TaskAdapter'
]

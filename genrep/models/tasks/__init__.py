from .base import GRANULARITIES, StudentScores, TaskAdapter, TaskOutput
from .classification import ClassificationAdapter
from .detection import DetectionAdapter
from .segmentation import SegmentationAdapter

__all__ = [
    'GRANULARITIES', 'StudentScores', 'TaskAdapter', 'TaskOutput', 'ClassificationAdapter',
    'DetectionAdapter', 'SegmentationAdapter'
]

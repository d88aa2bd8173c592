from .base import GRANULARITIES, StudentScores, TaskAdapter, TaskOutput
from .classification import ClassificationAdapter
from .segmentation import SegmentationAdapter

__all__ = [
    'GRANULARITIES', 'StudentScores', 'TaskAdapter', 'TaskOutput', 'ClassificationAdapter',
    'SegmentationAdapter'
]

from .base import GRANULARITIES, StudentScores, TaskAdapter, TaskOutput
from .classification import ClassificationAdapter
from .depth import DepthAdapter
from .detection import DetectionAdapter
from .query_detection import QueryDetectionAdapter
from .segmentation import SegmentationAdapter

__all__ = [
    'GRANULARITIES', 'StudentScores', 'TaskAdapter', 'TaskOutput', 'ClassificationAdapter',
    'DepthAdapter', 'DetectionAdapter', 'QueryDetectionAdapter', 'SegmentationAdapter'
]

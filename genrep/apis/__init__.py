from .inference import config_dataset_meta, init_model
from .inferencers import (TASK_INFERENCERS, ClassificationInferencer, DetectionInferencer,
                          SegmentationInferencer, build_inferencer, config_task)

__all__ = [
    'ClassificationInferencer', 'DetectionInferencer', 'SegmentationInferencer',
    'TASK_INFERENCERS', 'build_inferencer', 'config_dataset_meta', 'config_task', 'init_model'
]

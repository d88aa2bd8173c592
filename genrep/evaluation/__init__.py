from .metrics import (ExpectedCalibrationError, FashionMNISTFeatureNet, GenerationMetric,
                      load_feature_net)

__all__ = [
    'ExpectedCalibrationError', 'FashionMNISTFeatureNet', 'GenerationMetric', 'load_feature_net'
]

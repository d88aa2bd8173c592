from .metrics import (ExpectedCalibrationError, FashionMNISTFeatureNet, GenerationMetric,
                      InceptionV3Space, MobileNetV2Space, build_feature_space, load_feature_net)

__all__ = [
    'ExpectedCalibrationError', 'FashionMNISTFeatureNet', 'GenerationMetric', 'load_feature_net',
    'MobileNetV2Space', 'InceptionV3Space', 'build_feature_space'
]

from .calibration import ExpectedCalibrationError, plot_reliability_diagram, reliability_bins
from .feature_extractors import (FEATURE_SPACE_NAMES, FashionMNISTSpace, FeatureSpace,
                                 InceptionV3Space, MobileNetV2Space, SpaceOutput,
                                 build_feature_space, mobilenet_v2_weights_path)
from .feature_net import (FashionMNISTFeatureNet, FeatureNetOutput, load_feature_net,
                          save_feature_net, state_dict_hash, to_feature_net_input)
from .generation import GenerationMetric, generation_scores
from .subset_iou import ClassSubsetIoUMetric

__all__ = [
    'ExpectedCalibrationError', 'reliability_bins', 'plot_reliability_diagram',
    'FashionMNISTFeatureNet', 'FeatureNetOutput', 'load_feature_net', 'save_feature_net',
    'state_dict_hash', 'to_feature_net_input', 'GenerationMetric', 'generation_scores',
    'FEATURE_SPACE_NAMES', 'FeatureSpace', 'SpaceOutput', 'FashionMNISTSpace',
    'MobileNetV2Space', 'InceptionV3Space', 'build_feature_space', 'mobilenet_v2_weights_path',
    'ClassSubsetIoUMetric'
]

from .calibration import ExpectedCalibrationError, plot_reliability_diagram, reliability_bins
from .feature_net import (FashionMNISTFeatureNet, FeatureNetOutput, load_feature_net,
                          save_feature_net, state_dict_hash, to_feature_net_input)
from .generation import GenerationMetric

__all__ = [
    'ExpectedCalibrationError', 'reliability_bins', 'plot_reliability_diagram',
    'FashionMNISTFeatureNet', 'FeatureNetOutput', 'load_feature_net', 'save_feature_net',
    'state_dict_hash', 'to_feature_net_input', 'GenerationMetric'
]

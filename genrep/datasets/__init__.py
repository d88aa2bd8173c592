"""Datasets the OpenMMLab toolkits lack, registered in ``genrep.registry.DATASETS``."""
from .fashion_mnist import FashionMNIST
from .scenes_depth import ScenesDepthDataset
from .scenes_seg import ScenesSegDataset

__all__ = ['FashionMNIST', 'ScenesDepthDataset', 'ScenesSegDataset']

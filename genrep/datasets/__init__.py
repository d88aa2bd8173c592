"""Datasets the OpenMMLab toolkits lack, registered in ``genrep.registry.DATASETS``."""
from .celebahq import CelebAHQ
from .fashion_mnist import FashionMNIST
from .lvis_vocabulary import LVISV1VocabularyDataset
from .nyuv2_split import NYUv2SplitDataset
from .objectnet import ObjectNet
from .scenes_depth import ScenesDepthDataset
from .scenes_seg import ScenesSegDataset

__all__ = [
    'CelebAHQ', 'FashionMNIST', 'LVISV1VocabularyDataset', 'NYUv2SplitDataset', 'ObjectNet',
    'ScenesDepthDataset', 'ScenesSegDataset'
]

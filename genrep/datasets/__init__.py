"""Datasets the OpenMMLab toolkits lack, registered in ``genrep.registry.DATASETS``."""
from .fashion_mnist import FashionMNIST

__all__ = ['FashionMNIST']

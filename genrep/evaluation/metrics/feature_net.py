"""The small Fashion-MNIST classifier that generation metrics use in place of Inception v3.

Inception v3 sees 299x299 RGB photographs; on 28x28 grayscale clothing its features say little, and
loading it needs downloaded weights. FID, IS and CAS on Fashion-MNIST therefore read this CNN,
trained once on the training split by ``tools/analysis_tools/train_feature_net.py``:
``features(x)`` (the penultimate layer) for FID, ``logits(x)`` for IS and CAS.

The canonical input is float [N, 1, 28, 28] in [-1, 1], the range the diffusion models work in.
``to_feature_net_input`` brings uint8 images and the 32x32 padded images of the Fashion-MNIST
configs (``mmcv.Pad`` pads right and bottom) to it.
"""
import hashlib
import os
import os.path as osp
from typing import Dict, Sequence

import torch
from torch import Tensor, nn

from genrep.registry import MODELS

DEFAULT_CHECKPOINT = 'work_dirs/feature_net/fmnist_feature_net.pth'
TRAIN_SCRIPT = 'tools/analysis_tools/train_feature_net.py'
IMAGE_SIZE = 28


def train_command(path: str) -> str:
    """The command that creates the checkpoint ``path``."""
    return f'python {TRAIN_SCRIPT} --out {path}'


@MODELS.register_module()
class FashionMNISTFeatureNet(nn.Module):
    """A small CNN classifier of 28x28 grayscale images with a named penultimate feature layer.

    Three 3x3 conv layers (28 -> pool -> 14 -> pool -> 7 -> 7), a fully connected feature layer
    of ``feature_dim`` units, and ReLU + a linear classifier.

    Args:
        channels (Sequence[int]): Output channels of the first and of the second and third conv
            layers. Defaults to (16, 32).
        feature_dim (int): Size of the penultimate features, ``num_features``. Defaults to 128.
        num_classes (int): Number of classes. Defaults to 10.
    """

    def __init__(self,
                 channels: Sequence[int] = (16, 32),
                 feature_dim: int = 128,
                 num_classes: int = 10):
        super().__init__()
        c1, c2 = channels
        self.arch = dict(channels=[c1, c2], feature_dim=feature_dim, num_classes=num_classes)
        self.num_features = feature_dim
        self.num_classes = num_classes
        self.trunk = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(c2 * (IMAGE_SIZE // 4)**2, feature_dim))
        self.classifier = nn.Sequential(nn.ReLU(), nn.Linear(feature_dim, num_classes))

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features [N, feature_dim] of images [N, 1, 28, 28] in [-1, 1] (for FID).

        Taken before the ReLU: no feature is stuck at zero, so FID's covariances are full rank.
        """
        return self.trunk(x)

    def logits(self, x: Tensor) -> Tensor:
        """Class logits [N, num_classes] of images [N, 1, 28, 28] in [-1, 1] (for IS and CAS)."""
        return self.classifier(self.trunk(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)


def crop_padding(imgs: Tensor) -> Tensor:
    """The 28x28 image in the top-left corner of [..., 32, 32] images; 28x28 pass unchanged.

    The Fashion-MNIST configs pad with ``mmcv.Pad(size=(32, 32))``, which pads right and bottom,
    so a generator trained on them draws the garment in the top-left 28x28.
    """
    size = tuple(imgs.shape[-2:])
    if size == (32, 32):
        return imgs[..., :IMAGE_SIZE, :IMAGE_SIZE]
    if size != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f'expected 28x28 or 32x32 (padded) images, got shape {tuple(imgs.shape)}')
    return imgs


def to_feature_net_input(imgs: Tensor) -> Tensor:
    """Images [N, 1, 28 or 32, 28 or 32], uint8 in [0, 255] or float in [-1, 1], as float32
    [N, 1, 28, 28] in [-1, 1]."""
    if imgs.dim() != 4 or imgs.shape[1] != 1:
        raise ValueError(f'expected grayscale images [N, 1, H, W], got shape {tuple(imgs.shape)}')
    imgs = crop_padding(imgs)
    if imgs.dtype == torch.uint8:
        return imgs.float() / 127.5 - 1
    return imgs.float()


class FeatureNetOutput(nn.Module):
    """One output of a ``FashionMNISTFeatureNet`` as the ``feature`` module of torchmetrics.

    torchmetrics' ``FrechetInceptionDistance`` and ``InceptionScore`` call a custom ``feature``
    module on the images as given to ``update`` (``normalize=False``) and expect [N, d]; FID reads
    ``num_features`` (else it runs the module on a dummy 3x299x299 image), IS applies softmax to
    the output, so it must be logits. Like torchmetrics' own Inception wrapper, this keeps the net
    in eval mode whatever ``train()`` is called with.

    Args:
        net (FashionMNISTFeatureNet): The network.
        output (str): ``'features'`` (for FID) or ``'logits'`` (for IS and CAS).
    """

    def __init__(self, net: FashionMNISTFeatureNet, output: str):
        super().__init__()
        if output not in ('features', 'logits'):
            raise ValueError(f"output must be 'features' or 'logits', got {output!r}")
        self.net = net
        self.output = output
        self.num_features = net.num_features if output == 'features' else net.num_classes
        self.train(False)

    def train(self, mode: bool = True) -> 'FeatureNetOutput':
        return super().train(False)

    @torch.no_grad()
    def forward(self, imgs: Tensor) -> Tensor:
        return getattr(self.net, self.output)(to_feature_net_input(imgs))


def state_dict_hash(state_dict: Dict[str, Tensor]) -> str:
    """SHA-256 (hex) of a state dict's names, dtypes, shapes and values, independent of device."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)};'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_feature_net(net: FashionMNISTFeatureNet, path: str, test_accuracy: float,
                     **meta) -> str:
    """Write ``net`` with its test accuracy and content hash to ``path`` (atomically).

    Returns:
        str: The hash, ``state_dict_hash(net.state_dict())``.
    """
    state_dict = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    sha256 = state_dict_hash(state_dict)
    checkpoint = dict(state_dict=state_dict, arch=net.arch, test_accuracy=float(test_accuracy),
                      sha256=sha256, meta=meta)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp_path = f'{path}.tmp'
    torch.save(checkpoint, tmp_path)
    os.replace(tmp_path, path)
    return sha256


def read_feature_net_checkpoint(path: str) -> dict:
    """The checkpoint dict written by ``save_feature_net``, its hash checked."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'feature net checkpoint {path} not found: create it with `{train_command(path)}`')
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    missing = {'state_dict', 'arch', 'test_accuracy', 'sha256'} - set(checkpoint)
    if missing:
        raise ValueError(f'{path} is not a feature net checkpoint: no {sorted(missing)}')
    found = state_dict_hash(checkpoint['state_dict'])
    if found != checkpoint['sha256']:
        raise ValueError(f'{path}: weights hash {found[:12]} differs from the recorded '
                         f'{checkpoint["sha256"][:12]} (damaged file?): recreate it with '
                         f'`{train_command(path)} --force`')
    return checkpoint


def load_feature_net(path: str = DEFAULT_CHECKPOINT,
                     device: str = 'cpu') -> FashionMNISTFeatureNet:
    """Load the trained feature net (``weights_only=True``), in eval mode.

    Raises:
        FileNotFoundError: ``path`` does not exist; the message names the command creating it.
    """
    checkpoint = read_feature_net_checkpoint(path)
    net = FashionMNISTFeatureNet(**checkpoint['arch'])
    net.load_state_dict(checkpoint['state_dict'])
    return net.to(device).eval()

"""Generation metrics on Fashion-MNIST: FID, Inception Score and Classification Accuracy Score.

All three read ``FashionMNISTFeatureNet`` in place of Inception v3 (see ``feature_net.py``); the
math is torchmetrics': ``FrechetInceptionDistance`` and ``InceptionScore`` with a custom feature
module, ``MulticlassAccuracy`` for CAS (the feature net's accuracy on generated images against the
classes that were requested).

``GenerationMetric`` does not care how the samples were made: anything that hands it data samples
with a generated image and, for CAS, the requested label, works (a sampling loop, a dump of PNGs).
"""
import copy
import hashlib
import json
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from genrep.registry import DATASETS, METRICS
from .feature_net import (DEFAULT_CHECKPOINT, FashionMNISTFeatureNet, FeatureNetOutput,
                          crop_padding, load_feature_net, state_dict_hash)

# The states of torchmetrics' FrechetInceptionDistance that hold the real images' statistics.
REAL_STATE_NAMES = ('real_features_sum', 'real_features_cov_sum', 'real_features_num_samples')
FASHION_MNIST_TRAIN = dict(type='genrep.FashionMNIST', split='train')


def to_uint8_image(img: Union[Tensor, np.ndarray], key: str = 'image') -> Tensor:
    """A grayscale image [1, H, W] or [H, W] (H, W in {28, 32}), uint8 or float in [-1, 1], as a
    uint8 tensor [1, 28, 28].

    Float images are quantised as a saved PNG would be, so generated and real images (uint8) reach
    the feature net the same way; 32x32 images lose their padding (``crop_padding``).
    """
    img = torch.as_tensor(img).detach().cpu()
    if img.dim() == 2:
        img = img[None]
    if img.dim() != 3 or img.shape[0] != 1:
        raise ValueError(f'{key}: expected a grayscale image [1, H, W], got shape '
                         f'{tuple(img.shape)}')
    img = crop_padding(img)
    if img.dtype == torch.uint8:
        return img.contiguous()
    if not img.is_floating_point():
        raise ValueError(f'{key}: expected uint8 or float in [-1, 1], got {img.dtype}')
    return ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _label_of(value) -> int:
    """A class index from an int, a 0-d tensor or a one-element tensor (mmpretrain's gt_label)."""
    return int(torch.as_tensor(value).reshape(-1)[0])


def _batches(imgs: Tensor, batch_size: int, device: str):
    for start in range(0, len(imgs), batch_size):
        yield imgs[start:start + batch_size].to(device)


def real_images_of(dataset) -> Tensor:
    """All images of a classification dataset as uint8 [N, 1, 28, 28].

    A sample is read from ``inputs`` (after ``PackInputs``) or ``img`` (no pipeline).
    """
    imgs = []
    for i in range(len(dataset)):
        sample = dataset[i]
        imgs.append(to_uint8_image(sample['inputs'] if 'inputs' in sample else sample['img'],
                                   key=f'real image {i}'))
    return torch.stack(imgs)


@METRICS.register_module()
class GenerationMetric(BaseMetric):
    """FID, Inception Score and CAS of generated Fashion-MNIST images.

    Each data sample (a dict, or a data element such as mmpretrain's ``DataSample``) holds a
    generated image under ``fake_key`` ([1, 28, 28] or padded [1, 32, 32]; float in [-1, 1] or
    uint8) and, for CAS, the requested class under ``label_key``. Reports ``generation/fid``,
    ``generation/is`` (with ``generation/is_std`` over the splits) and, when every sample has a
    label, ``generation/cas``.

    Real statistics for FID come from one of two places:

    - ``real_dataset`` (default: the Fashion-MNIST training split): its features' sums are computed
      once and cached in ``real_stats_file``, by default ``fid_real_stats_<key>.pth`` next to the
      feature net checkpoint, where ``<key>`` hashes the feature net's weights and the dataset
      config. A cache written for other weights or another dataset is refused, never used.
    - ``real_dataset=None``: the real images come with the data samples, under ``real_key``.

    Args:
        feature_net (str | FashionMNISTFeatureNet): The feature net checkpoint written by
            ``tools/analysis_tools/train_feature_net.py``, or the network itself.
            Defaults to ``DEFAULT_CHECKPOINT``.
        real_dataset (dict, optional): Dataset config of the real images (built from genrep's
            DATASETS, so name types with their scope). Defaults to Fashion-MNIST's train split.
        real_stats_file (str, optional): Cache of the real statistics; see above.
        fake_key (str): Key of the generated image. Defaults to 'fake_img'.
        label_key (str): Key of the requested class. Defaults to 'gt_label'.
        real_key (str): Key of a real image when ``real_dataset`` is None. Defaults to 'gt_img'.
        is_splits (int): Number of splits of the Inception Score. Defaults to 10.
        batch_size (int): Images per feature net call. Defaults to 500.
        device (str): Device the feature net runs on. Defaults to 'cpu'.
        collect_device (str): Device to collect results across ranks on. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to 'generation'.
    """
    default_prefix = 'generation'

    def __init__(self,
                 feature_net: Union[str, FashionMNISTFeatureNet] = DEFAULT_CHECKPOINT,
                 real_dataset: Optional[dict] = FASHION_MNIST_TRAIN,
                 real_stats_file: Optional[str] = None,
                 fake_key: str = 'fake_img',
                 label_key: str = 'gt_label',
                 real_key: str = 'gt_img',
                 is_splits: int = 10,
                 batch_size: int = 500,
                 device: str = 'cpu',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        # Loaded now: a missing checkpoint fails when the evaluator is built, not after an epoch.
        if isinstance(feature_net, str):
            checkpoint_dir = osp.dirname(feature_net)
            feature_net = load_feature_net(feature_net)
        elif isinstance(feature_net, nn.Module):
            checkpoint_dir = None
        else:
            raise TypeError(f'feature_net must be a checkpoint path or a module, got '
                            f'{type(feature_net).__name__}')
        self.feature_net = feature_net.eval()
        self.feature_net_hash = state_dict_hash(feature_net.state_dict())
        self.real_dataset = copy.deepcopy(real_dataset)
        if real_dataset is not None and real_stats_file is None and checkpoint_dir is not None:
            real_stats_file = osp.join(checkpoint_dir, f'fid_real_stats_{self._cache_key()}.pth')
        self.real_stats_file = real_stats_file
        self.fake_key, self.label_key, self.real_key = fake_key, label_key, real_key
        self.is_splits = is_splits
        self.batch_size = batch_size
        self.device = device
        self._real_state = None

    def _cache_key(self) -> str:
        """What the real statistics depend on: the feature net's weights and the dataset."""
        identity = json.dumps(dict(feature_net=self.feature_net_hash, dataset=self.real_dataset),
                              sort_keys=True, default=str)
        return hashlib.sha256(identity.encode()).hexdigest()[:16]

    def process(self, data_batch, data_samples: Sequence[Union[dict, BaseDataElement]]) -> None:
        for data_sample in data_samples:
            if isinstance(data_sample, BaseDataElement):
                data_sample = data_sample.to_dict()
            if self.fake_key not in data_sample:
                raise KeyError(f"GenerationMetric: data sample has no generated image under "
                               f"fake_key={self.fake_key!r} (keys: {sorted(data_sample)})")
            result = dict(fake=to_uint8_image(data_sample[self.fake_key], self.fake_key))
            if self.label_key in data_sample:
                result['label'] = _label_of(data_sample[self.label_key])
            if self.real_dataset is None:
                if self.real_key not in data_sample:
                    raise KeyError(f'GenerationMetric with real_dataset=None reads real images '
                                   f'from the data samples, but one has no {self.real_key!r}')
                result['real'] = to_uint8_image(data_sample[self.real_key], self.real_key)
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        fakes = torch.stack([r['fake'] for r in results])
        net = self.feature_net.to(self.device)
        # sync_on_compute=False: mmengine computes on rank 0 alone, after gathering the results.
        fid = FrechetInceptionDistance(
            feature=FeatureNetOutput(net, 'features'), sync_on_compute=False).to(self.device)
        if self.real_dataset is None:
            for batch in _batches(torch.stack([r['real'] for r in results]), self.batch_size,
                                  self.device):
                fid.update(batch, real=True)
        else:
            self._load_real_state(fid)
        for batch in _batches(fakes, self.batch_size, self.device):
            fid.update(batch, real=False)
        metrics = dict(fid=float(fid.compute()))

        logits = FeatureNetOutput(net, 'logits')
        with warnings.catch_warnings():
            # It keeps all logits, [N, num_classes]: a few MB here, not the warned-of footprint.
            warnings.filterwarnings('ignore', message='Metric `InceptionScore` will save')
            inception_score = InceptionScore(
                feature=logits, splits=self.is_splits, sync_on_compute=False).to(self.device)
        for batch in _batches(fakes, self.batch_size, self.device):
            inception_score.update(batch)
        # IS shuffles the samples before splitting them: the same samples give the same score.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            is_mean, is_std = inception_score.compute()
        metrics.update({'is': float(is_mean), 'is_std': float(is_std)})

        labelled = ['label' in r for r in results]
        if all(labelled):
            labels = torch.tensor([r['label'] for r in results])
            cas = MulticlassAccuracy(num_classes=net.num_classes, average='micro',
                                     sync_on_compute=False).to(self.device)
            for batch, batch_labels in zip(
                    _batches(fakes, self.batch_size, self.device),
                    _batches(labels, self.batch_size, self.device)):
                cas.update(logits(batch), batch_labels)
            metrics['cas'] = float(cas.compute())
        elif any(labelled):
            raise ValueError(f'GenerationMetric: {sum(labelled)} of {len(results)} samples have '
                             f'a requested class under {self.label_key!r}; CAS needs all or none')
        return metrics

    def _load_real_state(self, fid: FrechetInceptionDistance) -> None:
        """Put the real images' feature statistics into ``fid``: from memory, the cache file, or
        computed from ``real_dataset`` (and then cached)."""
        missing = [name for name in REAL_STATE_NAMES if not hasattr(fid, name)]
        if missing:
            raise AttributeError(f'torchmetrics FrechetInceptionDistance has no state {missing}: '
                                 f'GenerationMetric expects those of torchmetrics 1.9')
        if self._real_state is None:
            self._real_state = self._read_real_stats_file()
        if self._real_state is None:
            self._real_state = self._compute_real_state(fid)
            self._write_real_stats_file()
        for name in REAL_STATE_NAMES:
            getattr(fid, name).copy_(self._real_state[name])

    def _compute_real_state(self, fid: FrechetInceptionDistance) -> Dict[str, Tensor]:
        dataset = DATASETS.build(self.real_dataset)
        MMLogger.get_current_instance().info(
            f'GenerationMetric: computing FID statistics of {len(dataset)} real images')
        for batch in _batches(real_images_of(dataset), self.batch_size, self.device):
            fid.update(batch, real=True)
        return {name: getattr(fid, name).detach().cpu().clone() for name in REAL_STATE_NAMES}

    def _read_real_stats_file(self) -> Optional[Dict[str, Tensor]]:
        path = self.real_stats_file
        if path is None or not osp.isfile(path):
            return None
        stats = torch.load(path, map_location='cpu', weights_only=True)
        expected = dict(feature_net_sha256=self.feature_net_hash,
                        real_dataset=json.dumps(self.real_dataset, sort_keys=True, default=str))
        for key, value in expected.items():
            if stats.get(key) != value:
                raise ValueError(f'{path}: FID real statistics were computed for {key} '
                                 f'{stats.get(key)!r}, not {value!r}; delete the file or set '
                                 f'real_stats_file to another path')
        return {name: stats[name] for name in REAL_STATE_NAMES}

    def _write_real_stats_file(self) -> None:
        path = self.real_stats_file
        if path is None:
            return
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        stats = dict(self._real_state, feature_net_sha256=self.feature_net_hash,
                     real_dataset=json.dumps(self.real_dataset, sort_keys=True, default=str))
        tmp_path = f'{path}.tmp'
        torch.save(stats, tmp_path)
        os.replace(tmp_path, path)
        MMLogger.get_current_instance().info(f'FID real statistics cached in {path}')

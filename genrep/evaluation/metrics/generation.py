"""Generation metrics: FID, Inception Score, precision and recall (k = 3) in one or more feature
spaces, and the Classification Accuracy Score (CAS).

The math is torch-fidelity's (0.4), applied to the features of our spaces
(``feature_extractors.py``): ``fid_features_to_statistics`` / ``fid_statistics_to_metric``,
``isc_features_to_metric`` and ``prc_features_to_metric`` (Kynkäänniemi et al., 2019: a sample is
"in" a set when it lies within the k-th nearest-neighbour radius of one of the set's members).
torchmetrics 1.9 offers FID and IS with a custom feature module but no precision / recall, so
torch-fidelity is the one library that gives all four. CAS is the Fashion-MNIST feature net's
accuracy on the generated images against the classes that were requested.

``GenerationMetric`` does not care how the samples were made: anything that hands it data samples
with a generated image and, for CAS, the requested label, works (a sampling loop, a dump of PNGs).
"""
import copy
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement
from torch import Tensor, nn
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from genrep.registry import DATASETS, METRICS
from .feature_extractors import FeatureSpace, SpaceOutput, build_feature_space
from .feature_net import (DEFAULT_CHECKPOINT, FashionMNISTFeatureNet, load_feature_net,
                          state_dict_hash)

FASHION_MNIST_TRAIN = dict(type='genrep.FashionMNIST', split='train')
# The real images of a capped ``num_real`` and the precision / recall reference are the first
# images of one permutation of the dataset drawn with this seed.
REAL_SUBSET_SEED = 0
# torch-fidelity's default: the IS splits are drawn from the same shuffle every time.
IS_SHUFFLE_SEED = 2020
# The in-house space keeps the metric names it had before there were other spaces.
UNSUFFIXED_SPACE = 'fmnist'


def to_uint8_image(img: Union[Tensor, np.ndarray], key: str = 'image') -> Tensor:
    """An image [C, H, W] (C = 1 or 3), [H, W] or a numpy [H, W, C], uint8 or float in [-1, 1],
    as a uint8 tensor [C, H, W].

    Float images are quantised as a saved PNG would be, so generated and real images (uint8) reach
    the feature spaces the same way. Grayscale 32x32 images lose the padding of the Fashion-MNIST
    configs (``mmcv.Pad`` pads right and bottom: the garment is the top-left 28x28).
    """
    if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[-1] in (1, 3) \
            and img.shape[0] not in (1, 3):
        img = img.transpose(2, 0, 1)
    img = torch.as_tensor(img).detach().cpu()
    if img.dim() == 2:
        img = img[None]
    if img.dim() != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f'{key}: expected an image [1 or 3, H, W], got shape '
                         f'{tuple(img.shape)}')
    if img.shape[0] == 1 and tuple(img.shape[-2:]) == (32, 32):
        img = img[:, :28, :28]
    if img.dtype == torch.uint8:
        return img.contiguous()
    if not img.is_floating_point():
        raise ValueError(f'{key}: expected uint8 or float in [-1, 1], got {img.dtype}')
    return ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _label_of(value) -> int:
    """A class index from an int, a 0-d tensor or a one-element tensor (mmpretrain's gt_label)."""
    return int(torch.as_tensor(value).reshape(-1)[0])


def metric_suffix(space: str) -> str:
    """'' for the in-house space (``fid``), ``_<space>`` otherwise (``fid_mobilenet_v2``)."""
    return '' if space == UNSUFFIXED_SPACE else f'_{space}'


def generation_scores(fake_features: Tensor,
                      fake_logits: Tensor,
                      real_moments: Dict[str, np.ndarray],
                      real_features: Tensor,
                      is_splits: int = 10,
                      prc_k: int = 3) -> Dict[str, float]:
    """FID, IS (mean and std over ``is_splits``), precision and recall of one feature space.

    Args:
        fake_features: [N, d] features of the generated images.
        fake_logits: [N, K] class logits of the generated images.
        real_moments: ``mu`` [d] and ``sigma`` [d, d] (float64) of the real features.
        real_features: [M, d] real features for precision / recall; the first ``N`` are used, so
            both sets have the same size, as Kynkäänniemi et al. prescribe.
        is_splits: Splits of the Inception Score.
        prc_k: Neighbourhood size k of precision and recall.
    """
    real_features = real_features[:len(fake_features)].float()
    for name, features in (('generated', fake_features), ('real', real_features)):
        if len(features) <= prc_k:
            raise ValueError(f'precision / recall with prc_k={prc_k} need more than {prc_k} '
                             f'{name} images, got {len(features)}')
    fake_moments = fid_features_to_statistics(fake_features.double().cpu())
    fid = fid_statistics_to_metric(fake_moments, real_moments, verbose=False)
    inception_score = isc_features_to_metric(fake_logits.double().cpu(), splits=is_splits,
                                             shuffle=True, rng_seed=IS_SHUFFLE_SEED)
    prc = prc_features_to_metric(fake_features.float(), real_features,
                                 prc_neighborhood=prc_k, verbose=False)
    return dict(fid=fid['frechet_inception_distance'],
                is_mean=inception_score['inception_score_mean'],
                is_std=inception_score['inception_score_std'],
                precision=prc['precision'],
                recall=prc['recall'])


class RealFeatureAccumulator:
    """FID moments of real features seen in batches (float64 sums), and the first ``keep`` of
    them for precision / recall."""

    def __init__(self, keep: int):
        self.keep = keep
        self.count = 0
        self.sum = self.outer_sum = None
        self.kept: List[Tensor] = []

    def update(self, features: Tensor) -> None:
        f = features.detach().cpu().double()
        if self.sum is None:
            self.sum = torch.zeros(f.shape[1], dtype=torch.float64)
            self.outer_sum = torch.zeros(f.shape[1], f.shape[1], dtype=torch.float64)
        self.sum += f.sum(0)
        self.outer_sum += f.T @ f
        missing = self.keep - sum(len(k) for k in self.kept)
        if missing > 0:
            self.kept.append(features[:missing].detach().cpu().float())
        self.count += len(f)

    def result(self) -> Dict[str, Tensor]:
        """``mu`` [d], ``sigma`` [d, d] (unbiased, as numpy.cov), ``prc_features`` [keep, d] and
        ``count``, the number of features seen."""
        if self.count < 2:
            raise ValueError(f'FID needs at least 2 real images, got {self.count}')
        mu = self.sum / self.count
        sigma = (self.outer_sum - self.count * torch.outer(mu, mu)) / (self.count - 1)
        return dict(mu=mu, sigma=sigma, prc_features=torch.cat(self.kept),
                    count=torch.tensor(self.count))


@METRICS.register_module()
class GenerationMetric(BaseMetric):
    """FID, IS, precision and recall of generated images in each feature space of ``features``,
    and CAS.

    Each data sample (a dict, or a data element such as mmpretrain's ``DataSample``) holds a
    generated image under ``fake_key`` ([C, H, W], C = 1 or 3; float in [-1, 1] or uint8; the
    Fashion-MNIST space takes [1, 28, 28] or padded [1, 32, 32]) and, for CAS, the requested class
    under ``label_key``. Features are computed in ``process``, so only [d]-vectors are kept.

    Reports, per space, ``generation/fid<s>``, ``generation/is<s>`` (``is_std<s>`` over the
    splits), ``generation/precision<s>`` and ``generation/recall<s>``, where ``<s>`` is empty for
    ``'fmnist'`` and ``_<space>`` otherwise (``generation/fid_mobilenet_v2``); and, when ``cas``
    and every sample has a label, ``generation/cas``.

    Real features come from one of two places:

    - ``real_dataset`` (default: the Fashion-MNIST training split; ``num_real`` of its images, all
      by default): FID moments and the first ``prc_num_real`` features are computed once per space
      and cached in ``real_stats_dir`` (default: next to the feature net checkpoint) as
      ``real_stats_<space>_<key>.pth``, ``<key>`` hashing the space's weights, the dataset config
      and the counts. A cache whose recorded identity differs is refused, never used.
    - ``real_dataset=None``: the real images come with the data samples, under ``real_key``.

    Precision / recall compare the N generated images with N real ones (the first N cached).

    Args:
        features (str | Sequence[str]): Feature spaces: ``'fmnist'``, ``'mobilenet_v2'``,
            ``'inception_v3'`` (see ``feature_extractors.py``). Defaults to 'fmnist'.
        feature_net (str | FashionMNISTFeatureNet): The Fashion-MNIST feature net checkpoint
            written by ``tools/analysis_tools/train_feature_net.py``, or the network itself; used
            by the 'fmnist' space and CAS. Defaults to ``DEFAULT_CHECKPOINT``.
        inception_weights (str, optional): torch-fidelity's Inception-v3 weights file, for the
            'inception_v3' space. Never downloaded.
        cas (bool): Report CAS (needs ``feature_net``). Defaults to True.
        real_dataset (dict, optional): Dataset config of the real images (built from genrep's
            DATASETS, so name types with their scope). Defaults to Fashion-MNIST's train split.
        num_real (int, optional): Real images for the FID moments, a seeded random subset of
            ``real_dataset``. Defaults to None (all).
        prc_num_real (int): Real features cached for precision / recall. Defaults to 10000.
        prc_k (int): Neighbourhood size of precision / recall. Defaults to 3.
        real_stats_dir (str, optional): Where the real statistics are cached; see above.
        fake_key (str): Key of the generated image. Defaults to 'fake_img'.
        label_key (str): Key of the requested class. Defaults to 'gt_label'.
        real_key (str): Key of a real image when ``real_dataset`` is None. Defaults to 'gt_img'.
        is_splits (int): Number of splits of the Inception Score. Defaults to 10.
        batch_size (int): Images per feature network call. Defaults to 100.
        device (str): Device the feature networks run on. Defaults to 'cpu'.
        collect_device (str): Device to collect results across ranks on. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to 'generation'.
    """
    default_prefix = 'generation'

    def __init__(self,
                 features: Union[str, Sequence[str]] = 'fmnist',
                 feature_net: Union[str, FashionMNISTFeatureNet, None] = DEFAULT_CHECKPOINT,
                 inception_weights: Optional[str] = None,
                 cas: bool = True,
                 real_dataset: Optional[dict] = FASHION_MNIST_TRAIN,
                 num_real: Optional[int] = None,
                 prc_num_real: int = 10000,
                 prc_k: int = 3,
                 real_stats_dir: Optional[str] = None,
                 fake_key: str = 'fake_img',
                 label_key: str = 'gt_label',
                 real_key: str = 'gt_img',
                 is_splits: int = 10,
                 batch_size: int = 100,
                 device: str = 'cpu',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.features = [features] if isinstance(features, str) else list(features)
        if not self.features or len(set(self.features)) != len(self.features):
            raise ValueError(f'features: expected distinct feature space names, got {features!r}')
        self.cas = cas
        # Networks load now: a missing weights file fails when the evaluator is built, not after
        # an epoch of training.
        net = None
        if 'fmnist' in self.features or cas:
            if isinstance(feature_net, str):
                if real_stats_dir is None:
                    real_stats_dir = osp.dirname(feature_net)
                net = load_feature_net(feature_net)
            elif isinstance(feature_net, nn.Module):
                net = feature_net
            else:
                raise TypeError(f"feature_net (needed by features='fmnist' and cas=True) must be "
                                f'a checkpoint path or a module, got {type(feature_net).__name__}')
        spaces = {name: build_feature_space(name, net, inception_weights)
                  for name in self.features}
        if cas and 'fmnist' not in spaces:
            spaces['fmnist'] = build_feature_space('fmnist', net)
        self.spaces: Dict[str, FeatureSpace] = spaces
        self.space_hashes = {name: state_dict_hash(space.state_dict())
                             for name, space in spaces.items()}
        self.real_dataset = copy.deepcopy(real_dataset)
        self.num_real = num_real
        self.prc_num_real = prc_num_real
        self.prc_k = prc_k
        self.real_stats_dir = real_stats_dir if real_dataset is not None else None
        self.fake_key, self.label_key, self.real_key = fake_key, label_key, real_key
        self.is_splits = is_splits
        self.batch_size = batch_size
        self.device = device
        self._real_stats: Dict[str, Dict[str, Tensor]] = {}

    def embed(self, imgs: Tensor, spaces: Sequence[str]) -> Dict[str, SpaceOutput]:
        """Features and logits of uint8 images [N, C, H, W] in each of ``spaces`` (on the CPU)."""
        outputs = {}
        for name in spaces:
            space = self.spaces[name].to(self.device)
            parts = [space(imgs[start:start + self.batch_size].to(self.device))
                     for start in range(0, len(imgs), self.batch_size)]
            outputs[name] = SpaceOutput(torch.cat([p.features for p in parts]).cpu(),
                                        torch.cat([p.logits for p in parts]).cpu())
        return outputs

    def process(self, data_batch, data_samples: Sequence[Union[dict, BaseDataElement]]) -> None:
        fakes, reals, labels = [], [], []
        for data_sample in data_samples:
            if isinstance(data_sample, BaseDataElement):
                data_sample = data_sample.to_dict()
            if self.fake_key not in data_sample:
                raise KeyError(f"GenerationMetric: data sample has no generated image under "
                               f"fake_key={self.fake_key!r} (keys: {sorted(data_sample)})")
            fakes.append(to_uint8_image(data_sample[self.fake_key], self.fake_key))
            labels.append(_label_of(data_sample[self.label_key])
                          if self.label_key in data_sample else None)
            if self.real_dataset is None:
                if self.real_key not in data_sample:
                    raise KeyError(f'GenerationMetric with real_dataset=None reads real images '
                                   f'from the data samples, but one has no {self.real_key!r}')
                reals.append(to_uint8_image(data_sample[self.real_key], self.real_key))
        if not fakes:
            return
        fake_out = self.embed(torch.stack(fakes), list(self.spaces))
        real_out = self.embed(torch.stack(reals), self.features) if reals else {}
        for i, label in enumerate(labels):
            result = dict(features={s: o.features[i] for s, o in fake_out.items()},
                          logits={s: o.logits[i] for s, o in fake_out.items()})
            if label is not None:
                result['label'] = label
            if real_out:
                result['real_features'] = {s: o.features[i] for s, o in real_out.items()}
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        metrics = {}
        for space in self.features:
            if self.real_dataset is None:
                real = torch.stack([r['real_features'][space] for r in results])
                real_moments = fid_features_to_statistics(real.double())
            else:
                stats = self.real_statistics(space)
                real = stats['prc_features']
                real_moments = dict(mu=stats['mu'].numpy(), sigma=stats['sigma'].numpy())
            scores = generation_scores(
                torch.stack([r['features'][space] for r in results]),
                torch.stack([r['logits'][space] for r in results]),
                real_moments, real, is_splits=self.is_splits, prc_k=self.prc_k)
            suffix = metric_suffix(space)
            metrics.update({f'fid{suffix}': scores['fid'], f'is{suffix}': scores['is_mean'],
                            f'is_std{suffix}': scores['is_std'],
                            f'precision{suffix}': scores['precision'],
                            f'recall{suffix}': scores['recall']})

        labelled = ['label' in r for r in results]
        if self.cas and all(labelled):
            predicted = torch.stack([r['logits']['fmnist'] for r in results]).argmax(1)
            labels = torch.tensor([r['label'] for r in results])
            metrics['cas'] = float((predicted == labels).float().mean())
        elif self.cas and any(labelled):
            raise ValueError(f'GenerationMetric: {sum(labelled)} of {len(results)} samples have '
                             f'a requested class under {self.label_key!r}; CAS needs all or none')
        return metrics

    # Real statistics: computed once per space from ``real_dataset``, cached on disk.

    def real_stats_identity(self, space: str) -> dict:
        """What the real statistics of ``space`` depend on."""
        return dict(space=space, weights_sha256=self.space_hashes[space],
                    real_dataset=json.dumps(self.real_dataset, sort_keys=True, default=str),
                    num_real=self.num_real, prc_num_real=self.prc_num_real,
                    seed=REAL_SUBSET_SEED)

    def real_stats_file(self, space: str) -> Optional[str]:
        if self.real_stats_dir is None:
            return None
        identity = json.dumps(self.real_stats_identity(space), sort_keys=True)
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return osp.join(self.real_stats_dir, f'real_stats_{space}_{key}.pth')

    def real_statistics(self, space: str) -> Dict[str, Tensor]:
        """``mu``, ``sigma`` and ``prc_features`` of the real images in ``space``: from memory,
        the cache file, or computed from ``real_dataset`` (and then cached)."""
        if space not in self._real_stats:
            stats = self._read_real_stats(space)
            if stats is None:
                stats = self._compute_real_stats(space)
                self._write_real_stats(space, stats)
            self._real_stats[space] = stats
        return self._real_stats[space]

    def _compute_real_stats(self, space: str) -> Dict[str, Tensor]:
        dataset = DATASETS.build(self.real_dataset)
        order = torch.randperm(len(dataset),
                               generator=torch.Generator().manual_seed(REAL_SUBSET_SEED))
        if self.num_real is not None:
            order = order[:self.num_real]
        MMLogger.get_current_instance().info(
            f'GenerationMetric: {space} features of {len(order)} real images')
        accumulator = RealFeatureAccumulator(keep=self.prc_num_real)
        for start in range(0, len(order), self.batch_size):
            imgs = []
            for i in order[start:start + self.batch_size].tolist():
                sample = dataset[i]
                imgs.append(to_uint8_image(sample['inputs'] if 'inputs' in sample else
                                           sample['img'], key=f'real image {i}'))
            accumulator.update(self.embed(torch.stack(imgs), [space])[space].features)
        return accumulator.result()

    def _read_real_stats(self, space: str) -> Optional[Dict[str, Tensor]]:
        path = self.real_stats_file(space)
        if path is None or not osp.isfile(path):
            return None
        stats = torch.load(path, map_location='cpu', weights_only=True)
        for key, value in self.real_stats_identity(space).items():
            if stats.get(key) != value:
                raise ValueError(f'{path}: real statistics were computed for {key} '
                                 f'{stats.get(key)!r}, not {value!r}; delete the file or set '
                                 f'real_stats_dir to another folder')
        return {name: stats[name] for name in ('mu', 'sigma', 'prc_features', 'count')}

    def _write_real_stats(self, space: str, stats: Dict[str, Tensor]) -> None:
        path = self.real_stats_file(space)
        if path is None:
            return
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        tmp_path = f'{path}.tmp'
        torch.save(dict(stats, **self.real_stats_identity(space)), tmp_path)
        os.replace(tmp_path, path)
        MMLogger.get_current_instance().info(f'real statistics ({space}) cached in {path}')

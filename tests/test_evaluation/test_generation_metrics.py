"""FID, IS and CAS with the Fashion-MNIST feature net (tiny and random here: no training in tests),
GenerationMetric's process/compute path, the real-statistics cache, and the feature net's
checkpoint and training tool."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from data_fixtures import write_fashion_mnist
from mmengine.evaluator import Evaluator
from mmpretrain.structures import DataSample
from scipy import linalg
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from genrep.evaluation.metrics.feature_net import (FashionMNISTFeatureNet, FeatureNetOutput,
                                                   load_feature_net, save_feature_net,
                                                   to_feature_net_input)
from genrep.evaluation.metrics.generation import GenerationMetric, to_uint8_image
from genrep.registry import METRICS, MODELS

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return FashionMNISTFeatureNet(channels=(4, 8), feature_dim=16).eval()


@pytest.fixture(scope='module')
def images():
    """300 uint8 'garments': a bright rectangle of random size and brightness on noisy black."""
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 40, (300, 1, 28, 28))
    for img in imgs:
        top, left = rng.integers(2, 10, 2)
        bottom, right = rng.integers(18, 26, 2)
        img[0, top:bottom, left:right] += rng.integers(100, 215)
    return torch.from_numpy(imgs.astype(np.uint8))


def noised(imgs, sigma, seed=0):
    """Float images in [-1, 1] with Gaussian noise of std ``sigma``."""
    generator = torch.Generator().manual_seed(seed)
    x = to_feature_net_input(imgs)
    return (x + sigma * torch.randn(x.shape, generator=generator)).clamp(-1, 1)


def fid_of(net, real, fake):
    fid = FrechetInceptionDistance(feature=FeatureNetOutput(net, 'features'))
    fid.update(real, real=True)
    fid.update(fake, real=False)
    return float(fid.compute())


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise(net, images):
    assert abs(fid_of(net, images, images)) < 1e-6
    fids = [fid_of(net, images, noised(images, sigma)) for sigma in (0.1, 0.3, 0.6)]
    assert 0 < fids[0] < fids[1] < fids[2], fids


def test_fid_matches_scipy(net, images):
    fake = noised(images, 0.3)
    with torch.no_grad():
        f1 = net.features(to_feature_net_input(images)).double().numpy()
        f2 = net.features(fake).double().numpy()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    expected = ((mu1 - mu2)**2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert fid_of(net, images, fake) == pytest.approx(expected, rel=1e-4)


@pytest.mark.filterwarnings('ignore:Metric `InceptionScore` will save')
def test_inception_score_of_uniform_logits_is_one(images):
    net = FashionMNISTFeatureNet(channels=(4, 8), feature_dim=16)
    torch.nn.init.zeros_(net.classifier[-1].weight)
    torch.nn.init.zeros_(net.classifier[-1].bias)
    inception_score = InceptionScore(feature=FeatureNetOutput(net, 'logits'), splits=3)
    inception_score.update(images)
    mean, _ = inception_score.compute()
    assert float(mean) == pytest.approx(1.0, abs=1e-6)


def test_feature_net_input_formats(net, images):
    """uint8 and float in [-1, 1], 28x28 and padded 32x32 (top-left, as mmcv.Pad) agree."""
    as_float = images.float() / 127.5 - 1
    padded = torch.nn.functional.pad(as_float, (0, 4, 0, 4), value=-1)
    reference = to_feature_net_input(images)
    torch.testing.assert_close(to_feature_net_input(as_float), reference)
    torch.testing.assert_close(to_feature_net_input(padded), reference)
    torch.testing.assert_close(to_uint8_image(padded[0]), images[0])
    torch.testing.assert_close(to_uint8_image(images[0, 0]), images[0])
    with pytest.raises(ValueError, match='28x28 or 32x32'):
        to_feature_net_input(torch.zeros(1, 1, 30, 30))
    features = FeatureNetOutput(net, 'features')
    assert features(images[:5]).shape == (5, net.num_features) and not features.training
    assert FeatureNetOutput(net, 'logits')(padded[:5]).shape == (5, 10)


def samples_of(fakes, labels=None, reals=None):
    """Generated images as data samples: mmpretrain DataSamples carrying the requested label as
    gt_label and the image as a field, the way a sampling loop could hand them over."""
    samples = []
    for i, fake in enumerate(fakes):
        sample = DataSample(metainfo={})
        sample.set_field(fake, 'fake_img')
        if labels is not None:
            sample.set_gt_label(int(labels[i]))
        if reals is not None:
            sample.set_field(reals[i], 'gt_img')
        samples.append(sample)
    return samples


def to_uint8_image_batch(imgs):
    return torch.stack([to_uint8_image(img) for img in imgs])


def run_metric(samples, **kwargs):
    evaluator = Evaluator(METRICS.build(dict(type='genrep.GenerationMetric', **kwargs)))
    for start in range(0, len(samples), 64):
        evaluator.process(samples[start:start + 64])
    return evaluator.evaluate(len(samples))


def test_generation_metric_names_and_cas(net, images):
    fakes = noised(images[:100], 0.05, seed=1)  # float [-1, 1], as a sampler outputs
    with torch.no_grad():
        predicted = net.logits(to_feature_net_input(to_uint8_image_batch(fakes))).argmax(1)
    right = run_metric(samples_of(fakes, predicted, images[100:200]), feature_net=net,
                       real_dataset=None, is_splits=2)
    assert set(right) == {'generation/fid', 'generation/is', 'generation/is_std',
                          'generation/cas'}
    assert right['generation/cas'] == 1.0
    assert right['generation/fid'] > 0 and right['generation/is'] >= 1.0

    wrong = run_metric(samples_of(fakes, (predicted + 1) % 10, images[100:200]), feature_net=net,
                       real_dataset=None, is_splits=2)
    assert wrong['generation/cas'] == 0.0
    assert wrong['generation/fid'] == pytest.approx(right['generation/fid'])

    unlabelled = run_metric(samples_of(fakes, reals=images[100:200]), feature_net=net,
                            real_dataset=None, is_splits=2)
    assert 'generation/cas' not in unlabelled


def test_real_statistics_from_a_dataset_are_cached(net, images, tmp_path):
    root = write_fashion_mnist(tmp_path / 'fmnist', num_train=40, num_test=4, suffix='')
    real_dataset = dict(type='genrep.FashionMNIST', data_root=str(root), split='train')
    stats_file = tmp_path / 'cache' / 'real_stats.pth'
    samples = samples_of(images[:50])
    first = run_metric(samples, feature_net=net, real_dataset=real_dataset,
                       real_stats_file=str(stats_file), is_splits=2)
    assert stats_file.is_file()

    # The same statistics, from the file: the dataset is not read again.
    (root / 'train-images-idx3-ubyte').unlink()
    second = run_metric(samples, feature_net=net, real_dataset=real_dataset,
                        real_stats_file=str(stats_file), is_splits=2)
    assert second['generation/fid'] == pytest.approx(first['generation/fid'])

    # Another feature net may not use them.
    other = FashionMNISTFeatureNet(channels=(4, 8), feature_dim=16)
    with pytest.raises(ValueError, match='feature_net_sha256'):
        run_metric(samples, feature_net=other, real_dataset=real_dataset,
                   real_stats_file=str(stats_file), is_splits=2)


def test_default_cache_file_sits_next_to_the_checkpoint(net, tmp_path):
    checkpoint = tmp_path / 'feature_net' / 'fmnist_feature_net.pth'
    save_feature_net(net, str(checkpoint), test_accuracy=0.1)
    metric = GenerationMetric(feature_net=str(checkpoint))
    assert osp.dirname(metric.real_stats_file) == str(checkpoint.parent)
    assert osp.basename(metric.real_stats_file).startswith('fid_real_stats_')
    other_split = GenerationMetric(feature_net=str(checkpoint),
                                   real_dataset=dict(type='genrep.FashionMNIST', split='test'))
    assert other_split.real_stats_file != metric.real_stats_file


def test_feature_net_checkpoint_round_trip(net, images, tmp_path):
    path = tmp_path / 'net.pth'
    sha256 = save_feature_net(net, str(path), test_accuracy=0.5)
    loaded = load_feature_net(str(path))
    x = to_feature_net_input(images[:4])
    torch.testing.assert_close(loaded.features(x), net.features(x))
    assert torch.load(path, weights_only=True)['sha256'] == sha256
    assert MODELS.build(dict(type='FashionMNISTFeatureNet')).num_features == 128


def test_missing_feature_net_checkpoint_names_path_and_command(tmp_path):
    path = str(tmp_path / 'absent.pth')
    with pytest.raises(FileNotFoundError) as info:
        load_feature_net(path)
    message = str(info.value)
    assert path in message and 'tools/analysis_tools/train_feature_net.py' in message
    assert '\n' not in message
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        GenerationMetric(feature_net=path)


def test_training_tool_is_cached(net, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'train_feature_net', osp.join(REPO_ROOT, 'tools/analysis_tools/train_feature_net.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    path = tmp_path / 'net.pth'
    save_feature_net(net, str(path), test_accuracy=0.875)
    tool.main(['--out', str(path), '--data-root', str(tmp_path / 'no-data')])
    assert 'test accuracy 0.8750' in capsys.readouterr().out

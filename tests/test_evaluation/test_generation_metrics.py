"""FID, IS, precision / recall and CAS with the Fashion-MNIST feature net (tiny and random here: no
training in tests), GenerationMetric's process/compute path, the real-statistics cache, and the
feature net's checkpoint and training tool. The ImageNet feature spaces are in
test_feature_extractors.py."""
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import load_tool
from data_fixtures import write_fashion_mnist
from mmengine.evaluator import Evaluator
from mmpretrain.structures import DataSample
from scipy import linalg

from genrep.evaluation.metrics.feature_net import (FashionMNISTFeatureNet, FeatureNetOutput,
                                                   load_feature_net, save_feature_net,
                                                   to_feature_net_input)
from genrep.evaluation.metrics.generation import (GenerationMetric, generation_scores,
                                                  to_uint8_image)
from genrep.registry import METRICS, MODELS


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
    """FID of GenerationMetric, the real images handed over with the samples."""
    return run_metric(samples_of(fake, reals=real), feature_net=net, real_dataset=None,
                      is_splits=2)['generation/fid']


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise(net, images):
    assert abs(fid_of(net, images, images)) < 1e-6
    fids = [fid_of(net, images, noised(images, sigma)) for sigma in (0.1, 0.3, 0.6)]
    assert 0 < fids[0] < fids[1] < fids[2], fids


def test_fid_matches_scipy(net, images):
    """torch-fidelity's FID (eigenvalues of sigma1 sigma2) equals the textbook formula with
    scipy's matrix square root."""
    fake = noised(images, 0.3)
    with torch.no_grad():
        f1 = net.features(to_feature_net_input(images)).double().numpy()
        f2 = net.features(to_feature_net_input(to_uint8_image_batch(fake))).double().numpy()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    expected = ((mu1 - mu2)**2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert fid_of(net, images, fake) == pytest.approx(expected, rel=1e-5)

    # The same on fixed features with fewer samples than dimensions (singular covariances).
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, 32)), 0.5 + 2 * rng.normal(size=(30, 32))
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (((a.mean(0) - b.mean(0))**2).sum()
                + np.trace(sa + sb - 2 * linalg.sqrtm(sa @ sb).real))
    scores = generation_scores(torch.from_numpy(a), torch.zeros(20, 2),
                               dict(mu=b.mean(0), sigma=sb), torch.from_numpy(b), is_splits=1)
    assert scores['fid'] == pytest.approx(expected, rel=1e-6)


def test_inception_score_of_uniform_logits_is_one(images):
    net = FashionMNISTFeatureNet(channels=(4, 8), feature_dim=16)
    torch.nn.init.zeros_(net.classifier[-1].weight)
    torch.nn.init.zeros_(net.classifier[-1].bias)
    scores = run_metric(samples_of(images[:40], reals=images[40:80]), feature_net=net,
                        real_dataset=None, is_splits=3)
    assert scores['generation/is'] == pytest.approx(1.0, abs=1e-6)


def test_inception_score_of_confident_balanced_logits_is_the_class_count():
    """One-hot predictions spread evenly over K classes: exp(KL(p(y|x) || p(y))) = K."""
    logits = torch.full((40, 4), -1e4)
    logits[torch.arange(40), torch.arange(40) % 4] = 0
    features = torch.randn(40, 5, generator=torch.Generator().manual_seed(0))
    moments = dict(mu=np.zeros(5), sigma=np.eye(5))
    scores = generation_scores(features, logits, moments, features, is_splits=1)
    assert scores['is_mean'] == pytest.approx(4.0, rel=1e-6)


def brute_force_precision_recall(fake, real, k):
    """Kynkäänniemi et al. (2019) by explicit loops: a point is in the manifold of a set when it
    is within the distance from some member to that member's k-th nearest other member."""
    def radii(points):
        return [sorted(np.linalg.norm(points - p, axis=1))[k] for p in points]  # [0] is p itself

    def coverage(queries, points):
        r = radii(points)
        return np.mean([any(np.linalg.norm(q - p) <= r_p for p, r_p in zip(points, r))
                        for q in queries])

    return coverage(fake, real), coverage(real, fake)


@pytest.mark.parametrize('shift', [0.0, 1.5, 4.0])
def test_precision_recall_equal_brute_force(shift):
    rng = np.random.default_rng(int(shift * 10))
    real = rng.normal(size=(60, 3))
    # Generated: a narrower cloud (high precision, low recall) moved by ``shift``.
    fake = 0.4 * rng.normal(size=(60, 3)) + shift
    expected = brute_force_precision_recall(fake, real, k=3)
    moments = dict(mu=real.mean(0), sigma=np.cov(real, rowvar=False))
    scores = generation_scores(torch.from_numpy(fake), torch.zeros(60, 2), moments,
                               torch.from_numpy(real), is_splits=1, prc_k=3)
    # torch-fidelity averages in float32; one point more or less would move a score by 1/60.
    assert (scores['precision'], scores['recall']) == pytest.approx(expected, abs=1e-6)
    if shift == 0.0:
        assert scores['precision'] > 0.9 and scores['recall'] < 0.6, scores
    if shift == 4.0:
        assert scores['precision'] == 0.0 and scores['recall'] == 0.0


def test_precision_recall_of_constructed_sets():
    """Real: the points 0..9 on a line. Generated: real points 0..4 plus 5 points far away.
    Precision 0.5: exactly the 5 copies lie in a real point's ball. Recall with k = 3: among the
    generated, point 4's radius is 3 (its 3rd nearest other point is 1), so it covers the real
    points up to 7; 8 and 9 are beyond every generated ball (the far points' radii are <= 1.5):
    recall 0.8."""
    real = torch.stack([torch.arange(10.), torch.zeros(10)], 1)
    far = torch.stack([100 + 0.5 * torch.arange(5.), torch.zeros(5)], 1)
    fake = torch.cat([real[:5], far])
    moments = dict(mu=real.double().mean(0).numpy(), sigma=np.eye(2))
    scores = generation_scores(fake, torch.zeros(10, 2), moments, real, is_splits=1, prc_k=3)
    assert scores['precision'] == pytest.approx(0.5)
    assert scores['recall'] == pytest.approx(0.8)
    with pytest.raises(ValueError, match='prc_k=3 need more than 3 generated'):
        generation_scores(fake[:3], torch.zeros(3, 2), moments, real, prc_k=3)


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
                          'generation/precision', 'generation/recall', 'generation/cas'}
    # precision / recall of the feature net's features of the same uint8 images, by brute force
    with torch.no_grad():
        fake_features = net.features(to_feature_net_input(to_uint8_image_batch(fakes)))
        real_features = net.features(to_feature_net_input(images[100:200]))
    expected = brute_force_precision_recall(fake_features.double().numpy(),
                                            real_features.double().numpy(), k=3)
    assert (right['generation/precision'], right['generation/recall']) == pytest.approx(
        expected, abs=1e-6)
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
    stats_dir = tmp_path / 'cache'
    samples = samples_of(images[:50])
    first = run_metric(samples, feature_net=net, real_dataset=real_dataset,
                       real_stats_dir=str(stats_dir), is_splits=2)
    [stats_file] = stats_dir.glob('real_stats_fmnist_*.pth')

    # The dataset's moments equal those of the same images handed over with the samples.
    from genrep.datasets import FashionMNIST
    train = FashionMNIST(data_root=str(root), split='train')
    reals = [to_uint8_image(train[i]['img']) for i in range(40)]
    paired = run_metric(samples_of(images[:40], reals=reals), feature_net=net,
                        real_dataset=None, is_splits=2)
    with_dataset = run_metric(samples[:40], feature_net=net, real_dataset=real_dataset,
                              real_stats_dir=str(stats_dir), is_splits=2)
    for key in ('generation/fid', 'generation/precision', 'generation/recall'):
        assert with_dataset[key] == pytest.approx(paired[key], rel=1e-6), key

    # The same statistics, from the file: the dataset is not read again.
    (root / 'train-images-idx3-ubyte').unlink()
    second = run_metric(samples, feature_net=net, real_dataset=real_dataset,
                        real_stats_dir=str(stats_dir), is_splits=2)
    assert second == pytest.approx(first)

    # Another feature net has its own file; a file whose recorded identity differs is refused.
    other = FashionMNISTFeatureNet(channels=(4, 8), feature_dim=16)
    metric = GenerationMetric(feature_net=other, real_dataset=real_dataset,
                              real_stats_dir=str(stats_dir))
    assert metric.real_stats_file('fmnist') != str(stats_file)
    stats_file.rename(metric.real_stats_file('fmnist'))
    with pytest.raises(ValueError, match='weights_sha256'):
        run_metric(samples, feature_net=other, real_dataset=real_dataset,
                   real_stats_dir=str(stats_dir), is_splits=2)


def test_default_cache_file_sits_next_to_the_checkpoint(net, tmp_path):
    checkpoint = tmp_path / 'feature_net' / 'fmnist_feature_net.pth'
    save_feature_net(net, str(checkpoint), test_accuracy=0.1)
    metric = GenerationMetric(feature_net=str(checkpoint))
    assert osp.dirname(metric.real_stats_file('fmnist')) == str(checkpoint.parent)
    assert osp.basename(metric.real_stats_file('fmnist')).startswith('real_stats_fmnist_')
    other_split = GenerationMetric(feature_net=str(checkpoint),
                                   real_dataset=dict(type='genrep.FashionMNIST', split='test'))
    assert other_split.real_stats_file('fmnist') != metric.real_stats_file('fmnist')
    fewer = GenerationMetric(feature_net=str(checkpoint), num_real=1000)
    assert fewer.real_stats_file('fmnist') != metric.real_stats_file('fmnist')


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
    tool = load_tool('tools/analysis_tools/train_feature_net.py')
    path = tmp_path / 'net.pth'
    save_feature_net(net, str(path), test_accuracy=0.875)
    tool.main(['--out', str(path), '--data-root', str(tmp_path / 'no-data')])
    assert 'test accuracy 0.8750' in capsys.readouterr().out

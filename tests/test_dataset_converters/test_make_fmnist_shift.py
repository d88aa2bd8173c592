"""tools/dataset_converters/make_fmnist_shift.py: the warp against numpy's exact rotations, the
composite against its formula, and the written set through genrep.FashionMNIST (same labels, same
bytes for the same seed, shifted images)."""
import json

import numpy as np
import pytest

from conftest import load_tool
from data_fixtures import write_fashion_mnist

TEMPLATES = '/usr/share/tuxpaint/templates'


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/dataset_converters/make_fmnist_shift.py')


@pytest.mark.parametrize('angle,quarter_turns', [(0, 0), (90, 1), (180, 2), (-90, 3)])
def test_right_angles_equal_numpy_rotations(tool, angle, quarter_turns):
    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    rotated = tool.rotate_and_scale(image, angle, 1.0)
    # bilinear weights of cos(90 deg) ~ 6e-17 may round a value by one
    np.testing.assert_allclose(rotated, np.rot90(image, quarter_turns), atol=1)


def test_scale_shrinks_about_the_centre(tool):
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 4:24] = 200  # a 20 px square around the centre (14, 14)
    half = tool.rotate_and_scale(image, 0.0, 0.5)
    rows = np.flatnonzero(half.max(axis=1) > 100)
    assert (rows.min(), rows.max()) == (9, 18)  # 10 px, still centred


def test_composite_follows_its_formula(tool):
    garment = np.array([[0.0, 32.0, 64.0, 200.0]], np.float32)
    background = np.full_like(garment, 100.0)
    alpha = np.array([0.0, 0.5, 1.0, 1.0])
    expected = np.rint(alpha * garment + (1 - alpha) * background)
    np.testing.assert_array_equal(tool.composite(garment, background), expected)


@pytest.mark.usefixtures('tuxpaint')  # conftest: required, not skipped
def test_written_set_reads_as_fashion_mnist(tool, tmp_path):
    from genrep.datasets import FashionMNIST
    source = write_fashion_mnist(tmp_path / 'fmnist', num_train=1, num_test=12)
    outs = [tmp_path / name for name in ('a', 'b', 'c')]
    for out, seed in zip(outs, (0, 0, 1)):
        tool.main(['--out', str(out), '--source', str(source), '--seed', str(seed)])
    original = FashionMNIST(data_root=str(source), split='test')
    shifted = FashionMNIST(data_root=str(outs[0]), split='test')
    assert len(shifted) == 12
    for i in range(12):
        assert shifted[i]['gt_label'] == original[i]['gt_label']
        assert shifted[i]['img'].shape == (28, 28)
        assert not np.array_equal(shifted[i]['img'], original[i]['img'])
    name = 't10k-images-idx3-ubyte.gz'
    assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    assert (outs[0] / name).read_bytes() != (outs[2] / name).read_bytes()
    record = json.loads((outs[0] / 'shift.json').read_text())
    angles = [image['angle'] for image in record['images']]
    scales = [image['scale'] for image in record['images']]
    assert len(angles) == 12 and max(map(abs, angles)) <= 45
    assert all(0.7 <= s <= 1 for s in scales)
    # examples.png: the first 8 test images above their shifted versions, pixel for pixel.
    from PIL import Image
    picture = np.asarray(Image.open(outs[0] / 'examples.png'))
    assert picture.shape == (2 * 28 + 2, 8 * 30 - 2)
    for i in range(8):
        assert np.array_equal(picture[:28, 30 * i:30 * i + 28], original[i]['img'])
        assert np.array_equal(picture[30:, 30 * i:30 * i + 28], shifted[i]['img'])

"""FashionMNIST: tiny idx fixture files in the real format, pipelines, errors, the Debian data."""

import numpy as np
import pytest
import torch
from conftest import require_debian_data
from data_fixtures import idx_bytes, write_idx

from genrep.datasets import FashionMNIST

DEBIAN_ROOT = '/usr/share/datasets/fashion-mnist'

# Fixture images are 4 x 3 (H x W), not square, so a transposed read would show.
TRAIN_LABELS = np.array([3, 0, 9, 1, 3], dtype=np.uint8)
TEST_LABELS = np.array([7, 2], dtype=np.uint8)


def fixture_images(n, offset):
    """Known pixels: image i, row r, column c holds (offset + 12 i + 3 r + c) % 256."""
    return ((offset + np.arange(n * 12)) % 256).astype(np.uint8).reshape(n, 4, 3)


TRAIN_IMAGES = fixture_images(len(TRAIN_LABELS), offset=200)
TEST_IMAGES = fixture_images(len(TEST_LABELS), offset=5)


def write_split(root, prefix, images, labels, suffix):
    write_idx(root / f'{prefix}-images-idx3-ubyte{suffix}', images, 2051)
    write_idx(root / f'{prefix}-labels-idx1-ubyte{suffix}', labels, 2049)


@pytest.fixture(params=['.gz', ''], ids=['gzip', 'raw'])
def data_root(request, tmp_path):
    write_split(tmp_path, 'train', TRAIN_IMAGES, TRAIN_LABELS, request.param)
    write_split(tmp_path, 't10k', TEST_IMAGES, TEST_LABELS, request.param)
    return tmp_path


def assert_one_line_naming(excinfo, *names):
    message = str(excinfo.value)
    assert '\n' not in message, message
    for name in names:
        assert str(name) in message, message


@pytest.mark.parametrize('split, images, labels', [('train', TRAIN_IMAGES, TRAIN_LABELS),
                                                   ('test', TEST_IMAGES, TEST_LABELS)])
def test_pixels_and_labels_round_trip(data_root, split, images, labels):
    dataset = FashionMNIST(data_root=str(data_root), split=split)

    assert len(dataset) == len(labels)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        assert info['img'].dtype == np.uint8
        np.testing.assert_array_equal(info['img'], images[i])
        assert type(info['gt_label']) is int and info['gt_label'] == labels[i]
    np.testing.assert_array_equal(dataset.get_gt_labels(), labels)
    assert dataset.CLASSES == ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                               'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
    assert dataset.metainfo['classes'] == dataset.CLASSES


@pytest.mark.parametrize('serialize_data', [True, False])
def test_indices_subset(data_root, serialize_data):
    dataset = FashionMNIST(
        data_root=str(data_root), indices=[1, 2, 4], serialize_data=serialize_data)

    assert len(dataset) == 3
    np.testing.assert_array_equal(dataset.get_gt_labels(), TRAIN_LABELS[[1, 2, 4]])
    np.testing.assert_array_equal(dataset.get_data_info(1)['img'], TRAIN_IMAGES[2])
    # A pipeline may write into the sample it gets; the stored data must not change.
    dataset.get_data_info(0)['img'][:] = 0
    np.testing.assert_array_equal(dataset.get_data_info(0)['img'], TRAIN_IMAGES[1])


def test_mmpretrain_pipeline_packs_padded_grayscale(data_root):
    dataset = FashionMNIST(
        data_root=str(data_root),
        pipeline=[dict(type='mmcv.Pad', size=(32, 32)), dict(type='mmpretrain.PackInputs')])

    packed = dataset[2]
    inputs = packed['inputs']
    assert inputs.shape == (1, 32, 32) and inputs.dtype == torch.uint8
    # mmcv Pad pads at the bottom and the right with zeros.
    np.testing.assert_array_equal(inputs[0, :4, :3].numpy(), TRAIN_IMAGES[2])
    assert inputs[0, 4:].sum() == 0 and inputs[0, :, 3:].sum() == 0
    assert packed['data_samples'].gt_label.tolist() == [int(TRAIN_LABELS[2])]


def test_built_from_config_by_scoped_type(data_root):
    from mmpretrain.registry import DATASETS as MMPRETRAIN_DATASETS

    dataset = MMPRETRAIN_DATASETS.build(
        dict(type='genrep.FashionMNIST', data_root=str(data_root), split='test'))
    assert isinstance(dataset, FashionMNIST) and len(dataset) == len(TEST_LABELS)


def test_missing_directory_names_path_and_install_command(tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(FileNotFoundError) as excinfo:
        FashionMNIST(data_root=str(missing))
    assert_one_line_naming(excinfo, missing, 'apt-get install dataset-fashion-mnist', 'data_root')


def test_missing_file_names_it(tmp_path):
    write_idx(tmp_path / 'train-images-idx3-ubyte.gz', TRAIN_IMAGES, 2051)
    with pytest.raises(FileNotFoundError) as excinfo:
        FashionMNIST(data_root=str(tmp_path))
    assert_one_line_naming(excinfo, 'train-labels-idx1-ubyte', tmp_path,
                           'apt-get install dataset-fashion-mnist')


def test_unknown_split():
    with pytest.raises(ValueError) as excinfo:
        FashionMNIST(split='val')
    assert_one_line_naming(excinfo, 'val')


@pytest.mark.parametrize('suffix', ['.gz', ''])
def test_wrong_magic_number(tmp_path, suffix):
    write_split(tmp_path, 'train', TRAIN_IMAGES, TRAIN_LABELS, suffix)
    bad = tmp_path / f'train-labels-idx1-ubyte{suffix}'
    write_idx(bad, TRAIN_LABELS, 2051)
    with pytest.raises(ValueError) as excinfo:
        FashionMNIST(data_root=str(tmp_path))
    assert_one_line_naming(excinfo, bad, 'magic')


@pytest.mark.parametrize('cut', [3, 65], ids=['data', 'header'])
def test_truncated_raw_file(tmp_path, cut):
    write_split(tmp_path, 'train', TRAIN_IMAGES, TRAIN_LABELS, '')
    bad = tmp_path / 'train-images-idx3-ubyte'
    bad.write_bytes(idx_bytes(TRAIN_IMAGES, 2051)[:-cut])
    with pytest.raises(ValueError) as excinfo:
        FashionMNIST(data_root=str(tmp_path))
    assert_one_line_naming(excinfo, bad, 'truncated')


def test_truncated_gzip_stream(tmp_path):
    write_split(tmp_path, 'train', TRAIN_IMAGES, TRAIN_LABELS, '.gz')
    bad = tmp_path / 'train-images-idx3-ubyte.gz'
    compressed = bad.read_bytes()
    bad.write_bytes(compressed[:len(compressed) // 2])
    with pytest.raises(ValueError) as excinfo:
        FashionMNIST(data_root=str(tmp_path))
    assert_one_line_naming(excinfo, bad, 'truncated')


def test_image_and_label_counts_disagree(tmp_path):
    write_split(tmp_path, 'train', TRAIN_IMAGES, TRAIN_LABELS[:-1], '')
    with pytest.raises(ValueError) as excinfo:
        FashionMNIST(data_root=str(tmp_path))
    assert_one_line_naming(excinfo, tmp_path / 'train-images-idx3-ubyte',
                           tmp_path / 'train-labels-idx1-ubyte')


def test_label_out_of_range(tmp_path):
    labels = TRAIN_LABELS.copy()
    labels[3] = 10
    write_split(tmp_path, 'train', TRAIN_IMAGES, labels, '.gz')
    with pytest.raises(ValueError) as excinfo:
        FashionMNIST(data_root=str(tmp_path))
    assert_one_line_naming(excinfo, tmp_path / 'train-labels-idx1-ubyte.gz', 'index 3')


@pytest.mark.parametrize('split, per_class', [('train', 6000), ('test', 1000)])
def test_debian_data(split, per_class):
    require_debian_data(DEBIAN_ROOT)
    dataset = FashionMNIST(split=split)

    assert len(dataset) == 10 * per_class
    assert dataset.get_data_info(0)['img'].shape == (28, 28)
    assert np.bincount(dataset.get_gt_labels(), minlength=10).tolist() == [per_class] * 10

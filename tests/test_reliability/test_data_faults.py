"""Data faults named: a corrupt or missing image or annotation fails at its first load with one line
naming the file and the dataset (also from a data worker), or, with ``skip_faulty=True``, is
skipped with a warning and counted; an error that no file explains is left as it is.

The scenes segmentation and depth datasets load their images and annotations with mmcv's and
mmseg's transforms, as the scenes jobs do; Fashion-MNIST reads its idx files when it is built.
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import logged_messages
from data_fixtures import write_fashion_mnist
from genrep.datasets.faults import DataFaultError


@pytest.fixture
def seg_tree(tmp_path):
    """A scenes segmentation tree of three 8x10 images with their label PNGs."""
    (tmp_path / 'classes.json').write_text(json.dumps(dict(classes=['sky', 'tree'])))
    for folder in ('images/train', 'annotations/train'):
        (tmp_path / folder).mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 10, 3), 40 * i, np.uint8)).save(
            tmp_path / f'images/train/scene_{i}.jpg')
        Image.fromarray(np.full((8, 10), i % 2, np.uint8)).save(
            tmp_path / f'annotations/train/scene_{i}.png')
    return tmp_path


def seg_dataset(root, **kwargs):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets.transforms import LoadAnnotations

    from genrep.datasets import ScenesSegDataset
    return ScenesSegDataset(
        data_root=str(root), img_suffix='.jpg', seg_map_suffix='.png',
        data_prefix=dict(img_path='images/train', seg_map_path='annotations/train'),
        pipeline=[LoadImageFromFile(), LoadAnnotations()], serialize_data=False, **kwargs)


def one_line(error):
    message = str(error.value)
    assert '\n' not in message, message
    return message


DAMAGES = {
    'corrupt image': ('images/train/scene_1.jpg', b'not a jpeg at all', 'img_path',
                      'it does not decode as an image'),
    'truncated image': ('images/train/scene_1.jpg', None, 'img_path',
                        'it does not decode as an image'),
    'corrupt annotation': ('annotations/train/scene_1.png', b'\x89PNG\r\n\x1a\n garbage',
                           'seg_map_path', 'it does not decode as an image'),
    'empty annotation': ('annotations/train/scene_1.png', b'', 'seg_map_path', 'it is empty'),
    # (mmseg lists the images of a folder: a missing one is not a sample; its annotation is.)
    'missing annotation': ('annotations/train/scene_1.png', 'delete', 'seg_map_path',
                           'it does not exist'),
}


@pytest.mark.parametrize('damage', sorted(DAMAGES))
def test_damaged_file_fails_in_one_line_naming_it_and_the_dataset(seg_tree, damage):
    name, content, key, why = DAMAGES[damage]
    path = seg_tree / name
    if content == 'delete':
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:40] if content is None else content)
    dataset = seg_dataset(seg_tree)
    assert dataset[0]['img'].shape == (8, 10, 3)  # the others load
    with pytest.raises(DataFaultError) as error:
        dataset[1]
    assert one_line(error).startswith(
        f"ScenesSegDataset(data_root='{seg_tree}'): sample 1: {key} {path}: {why} (")


def test_fault_in_a_data_worker_ends_the_error_with_the_named_line(seg_tree):
    (seg_tree / 'images/train/scene_2.jpg').write_bytes(b'garbage')
    loader = torch.utils.data.DataLoader(seg_dataset(seg_tree), batch_size=1, num_workers=1,
                                         collate_fn=lambda batch: batch)
    with pytest.raises(DataFaultError) as error:
        list(loader)
    last = str(error.value).strip().splitlines()[-1]
    assert last.startswith('genrep.datasets.faults.DataFaultError: ScenesSegDataset(')
    assert f'sample 2: img_path {seg_tree / "images/train/scene_2.jpg"}' in last


def test_skip_faulty_skips_counts_and_logs(seg_tree):
    """Opted in: the faulty sample is replaced by another (mmengine's refetch), counted and
    logged; in test mode a fault still fails (a metric needs every sample)."""
    bad = seg_tree / 'annotations/train/scene_0.png'
    bad.write_bytes(b'garbage')
    with logged_messages() as messages:
        dataset = seg_dataset(seg_tree, skip_faulty=True)
        sample = dataset[0]
    assert sample['img_path'] != str(seg_tree / 'images/train/scene_0.jpg')
    # mmengine draws the replacement at random: it may draw the faulty sample again.
    skips = [m for m in messages if m.startswith('skipped (')]
    assert len(skips) == dataset.faults_skipped >= 1
    for count, message in enumerate(skips, start=1):
        assert message.startswith(f'skipped ({count} so far, skip_faulty=True): '
                                  "ScenesSegDataset(data_root=") and str(bad) in message
    with pytest.raises(DataFaultError, match='scene_0.png'):
        seg_dataset(seg_tree, skip_faulty=True, test_mode=True)[0]


def test_an_error_no_file_explains_is_not_called_a_data_fault(seg_tree):
    def broken_transform(results):
        raise KeyError('a bug in a transform')

    from genrep.datasets import ScenesSegDataset
    dataset = ScenesSegDataset(
        data_root=str(seg_tree), img_suffix='.jpg', seg_map_suffix='.png',
        data_prefix=dict(img_path='images/train', seg_map_path='annotations/train'),
        pipeline=[broken_transform])
    with pytest.raises(KeyError, match='a bug in a transform'):
        dataset[0]


def test_depth_dataset_names_a_corrupt_depth_map(tmp_path):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets.transforms import LoadDepthAnnotation

    from genrep.datasets import ScenesDepthDataset
    (tmp_path / 'classes.json').write_text(json.dumps(dict(classes=['room'],
                                                           train={'scene_0': 'room'})))
    for folder in ('images/train', 'annotations/train'):
        (tmp_path / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / 'images/train/scene_0.jpg')
    (tmp_path / 'annotations/train/scene_0.png').write_bytes(b'\x89PNG broken')
    dataset = ScenesDepthDataset(data_root=str(tmp_path), split='train',
                                 pipeline=[LoadImageFromFile(), LoadDepthAnnotation()])
    assert len(dataset) == 1
    with pytest.raises(DataFaultError) as error:
        dataset[0]
    assert one_line(error).startswith(
        f"ScenesDepthDataset(data_root='{tmp_path}'): sample 0: depth_map_path "
        f"{tmp_path / 'annotations/train/scene_0.png'}: it does not decode as an image")


@pytest.mark.parametrize('split', ['train', 'test'])
def test_fashion_mnist_names_a_truncated_file_and_the_split(tmp_path, split):
    from genrep.datasets import FashionMNIST
    root = write_fashion_mnist(tmp_path, num_train=4, num_test=4, suffix='')
    bad = root / f'{"train" if split == "train" else "t10k"}-images-idx3-ubyte'
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(ValueError) as error:
        FashionMNIST(data_root=str(root), split=split)
    assert one_line(error).startswith(f'FashionMNIST {split} split: {bad}: truncated idx file')

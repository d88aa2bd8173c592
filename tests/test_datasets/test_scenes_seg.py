"""ScenesSegDataset's class subsets on a COCO-Stuff-style scenes tree written here: the metainfo
carries the tree's seen / unseen lists, and ``subset='seen'`` relabels the seen classes in order
and ignores the others (mmseg's label map), checked against a numpy remapping."""
import json

import numpy as np
import pytest
from PIL import Image

from genrep.datasets import ScenesSegDataset

CLASSES = ['bird', 'boat', 'dog', 'flower', 'tree']
UNSEEN = ['boat', 'tree']
SEEN = ['bird', 'dog', 'flower']


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    meta = dict(classes=CLASSES, palette=[[i, 2 * i, 3 * i] for i in range(5)], seen=SEEN,
                unseen=UNSEEN, ignore_index=255)
    (tmp_path / 'classes.json').write_text(json.dumps(meta))
    for folder in ('images/val2017', 'annotations/val2017'):
        (tmp_path / folder).mkdir(parents=True)
    label = rng.integers(0, 5, (8, 10)).astype(np.uint8)
    label[:2] = 255
    Image.fromarray(label).save(tmp_path / 'annotations/val2017/scene_000000_labelTrainIds.png')
    image = np.zeros((8, 10, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / 'images/val2017/scene_000000.jpg')
    return tmp_path, label


def build(root, **kwargs):
    from mmseg.datasets.transforms import LoadAnnotations
    return ScenesSegDataset(
        data_root=str(root), img_suffix='.jpg', seg_map_suffix='_labelTrainIds.png',
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=[LoadAnnotations()], **kwargs)


def test_all_classes_with_the_subsets_in_the_metainfo(tree):
    root, label = tree
    data = build(root)
    assert list(data.metainfo['classes']) == CLASSES
    assert data.metainfo['seen'] == SEEN and data.metainfo['unseen'] == UNSEEN
    assert data.label_map is None
    np.testing.assert_array_equal(data[0]['gt_seg_map'], label)


def test_seen_subset_relabels_and_ignores_the_rest(tree):
    root, label = tree
    data = build(root, subset='seen')
    assert list(data.metainfo['classes']) == SEEN
    assert [list(c) for c in data.metainfo['palette']] == [[0, 0, 0], [2, 4, 6], [3, 6, 9]]
    new_id = {CLASSES.index(name): SEEN.index(name) for name in SEEN}
    expected = np.vectorize(lambda v: new_id.get(int(v), 255))(label)
    np.testing.assert_array_equal(data[0]['gt_seg_map'], expected)
    assert set(np.unique(expected)) <= {0, 1, 2, 255} and (expected == 255).sum() > 16


def test_unknown_subset_names_the_file(tree):
    root, _ = tree
    with pytest.raises(ValueError, match=r"subset='rare' is not a class list of .*classes.json "
                       r"\(it has \['seen', 'unseen'\]\)"):
        build(root, subset='rare')

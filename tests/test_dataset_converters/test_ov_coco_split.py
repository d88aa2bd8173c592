"""tools/dataset_converters/ov_coco_split.py and lvis_remove_rare.py on tiny json files written in
the official COCO / LVIS v1 layouts: the base-only training file, the 65-class validation file,
exactly the 17 standard novel classes, rare LVIS annotations removed, one-line errors."""
import json
import os.path as osp

import pytest

from conftest import REPO_ROOT, load_tool

NOVEL = ['airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie', 'snowboard',
         'skateboard', 'cup', 'knife', 'cake', 'couch', 'keyboard', 'sink', 'scissors']


@pytest.fixture(scope='module')
def helpers():
    import genrep  # noqa: F401 (torchvision before mmdet)
    return load_tool('tests/test_paper_configs/paper_config_helpers.py')


def test_the_split_has_the_17_standard_novel_classes():
    from mmengine.config import Config
    split = Config.fromfile(osp.join(REPO_ROOT, 'configs/_base_/datasets/ov_coco_split.py'))
    assert list(split.ov_coco_novel_classes) == NOVEL
    assert len(split.ov_coco_base_classes) == 48
    assert not set(split.ov_coco_base_classes) & set(NOVEL)
    assert set(split.ov_coco_classes) == set(split.ov_coco_base_classes) | set(NOVEL)


def test_ov_coco_split_writes_base_only_train_and_65_class_val(helpers, tmp_path):
    root = str(tmp_path / 'coco')
    train = helpers.write_coco(root, [['person', 'dog'], ['cat'], ['car', 'car', 'bus'],
                                      ['hair drier']], split='train')
    val = helpers.write_coco(root, [['dog', 'person'], ['toaster'], ['teddy bear']], split='val',
                             seed=1)
    tool = load_tool('tools/dataset_converters/ov_coco_split.py')
    tool.main(['--data-root', root])
    with open(osp.join(root, 'annotations/instances_train2017_ov_base.json')) as f:
        base = json.load(f)
    with open(osp.join(root, 'annotations/instances_val2017_ov_all.json')) as f:
        every = json.load(f)
    names = {c['id']: c['name'] for c in train['categories']}
    assert len(base['categories']) == 48 and len(every['categories']) == 65
    assert not {c['name'] for c in base['categories']} & set(NOVEL)
    # base boxes only; the image with only a cat and the one with only a hair drier are dropped
    assert [names[a['category_id']] for a in base['annotations']] == ['person', 'car', 'car']
    assert [i['id'] for i in base['images']] == [train['images'][0]['id'],
                                                 train['images'][2]['id']]
    kept = {a['id']: a for a in base['annotations']}
    for a in train['annotations']:  # the kept annotations are the official ones, untouched
        if a['id'] in kept:
            assert kept[a['id']] == a
    assert [names[a['category_id']] for a in every['annotations']] == ['dog', 'person',
                                                                       'toaster']
    assert len(every['images']) == 2  # the teddy bear image holds none of the 65 classes
    assert base['info'] == train['info'] and every['licenses'] == val['licenses']


def test_ov_coco_split_missing_file_is_one_line(tmp_path):
    tool = load_tool('tools/dataset_converters/ov_coco_split.py')
    with pytest.raises(SystemExit, match='instances_train2017.json'):
        tool.main(['--data-root', str(tmp_path)])


def test_lvis_remove_rare_drops_rare_annotations_only(helpers, tmp_path):
    root = str(tmp_path / 'lvis')
    from mmdet.datasets import LVISV1Dataset
    names = LVISV1Dataset.METAINFO['classes']
    data = helpers.write_lvis(root, [[names[0], names[1]], [names[2]], [names[1], names[3]]],
                              {names[1]: 'r', names[2]: 'c'})
    tool = load_tool('tools/dataset_converters/lvis_remove_rare.py')
    tool.main(['--data-root', root])
    from lvis import LVIS
    out = LVIS(osp.join(root, 'annotations/lvis_v1_train_norare.json'))
    assert [a['category_id'] for a in out.load_anns(None)] == [1, 3, 4]
    assert len(out.load_cats(None)) == 1203 and len(out.load_imgs(None)) == 3
    assert out.load_cats([2])[0]['frequency'] == 'r'
    assert data['categories'] == out.dataset['categories']
    data['categories'][0].pop('frequency')
    with open(osp.join(root, 'annotations/lvis_v1_train.json'), 'w') as f:
        json.dump(data, f)
    with pytest.raises(SystemExit, match='lvis_v1_train.json.*frequency'):
        tool.main(['--data-root', root])

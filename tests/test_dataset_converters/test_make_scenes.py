"""tools/dataset_converters/make_scenes.py on a few 64 px scenes from a subset of the installed
tuxpaint stamps (linked, never copied, under tmp_path): same seed -> same bytes, every label map
and mask equal to the cut-outs' alpha masks re-derived here from the PNGs with the occlusion of
later (nearer) objects, held-out categories absent from train, and the trees loaded through
mmseg's datasets, pycocotools' COCO and lvis' LVIS."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from conftest import load_tool

STAMPS = '/usr/share/tuxpaint/stamps'
TEMPLATES = '/usr/share/tuxpaint/templates'
# 8 fine categories in 5 super-categories; food/fruit also holds a cartoon/ folder to be skipped.
FOLDERS = ('animals/birds', 'food/fruit', 'food/nuts', 'plants/flowers', 'plants/trees',
           'plants/mushrooms', 'town/flags', 'town/roadsigns')
SIZE = 64

pytestmark = pytest.mark.usefixtures('tuxpaint')  # conftest: required, not skipped


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/dataset_converters/make_scenes.py')


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp('sources')
    for folder in FOLDERS:
        os.makedirs(root / 'stamps' / osp.dirname(folder), exist_ok=True)
        os.symlink(osp.join(STAMPS, folder), root / 'stamps' / folder)
    os.makedirs(root / 'templates')
    for name in sorted(os.listdir(TEMPLATES))[:2]:
        os.symlink(osp.join(TEMPLATES, name), root / 'templates' / name)
    return dict(stamps=str(root / 'stamps'), templates=str(root / 'templates'))


def generate(tool, sources, out, seed, *extra):
    tool.main(['--out', str(out), '--seed', str(seed), '--num-train', '6', '--num-val', '6',
               '--num-depth-train', '3', '--num-depth-test', '4', '--size', str(SIZE),
               '--unseen-fraction', '0.25', '--stamps-dir', sources['stamps'],
               '--templates-dir', sources['templates'], *extra])
    return out


@pytest.fixture(scope='module')
def scenes(tool, sources, tmp_path_factory):
    return generate(tool, sources, tmp_path_factory.mktemp('seed0'), 0)


def read_tree(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


def load_json(path):
    with open(path) as f:
        return json.load(f)


def read_png(path):
    return np.asarray(Image.open(path))


def full_mask(record, stamps_dir):
    """The object's whole mask on the canvas, from its PNG: alpha cropped to the box of
    alpha >= 128, mirrored, resized (bilinear) to the placed size, thresholded at 128."""
    alpha = np.asarray(Image.open(osp.join(stamps_dir, record['stamp'])).convert('RGBA'))[..., 3]
    rows = np.flatnonzero((alpha >= 128).any(1))
    cols = np.flatnonzero((alpha >= 128).any(0))
    alpha = Image.fromarray(alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    if record['flip']:
        alpha = alpha.transpose(Image.FLIP_LEFT_RIGHT)
    small = np.asarray(alpha.resize((record['width'], record['height']), Image.BILINEAR)) >= 128
    canvas = np.zeros((SIZE + 2 * 64, SIZE + 2 * 64), bool)  # room for the parts off the image
    top, left = record['top'] + 64, record['left'] + 64
    canvas[top:top + record['height'], left:left + record['width']] = small
    return canvas[64:64 + SIZE, 64:64 + SIZE]


def visible_masks(objects, stamps_dir):
    """Each object's mask less those of the objects painted after it."""
    masks = [full_mask(o, stamps_dir) for o in objects]
    return [m & ~np.logical_or.reduce(masks[k + 1:] + [np.zeros_like(m)])
            for k, m in enumerate(masks)]


def test_same_seed_same_bytes_other_seed_differs(tool, sources, scenes, tmp_path):
    first = read_tree(scenes)
    again = read_tree(generate(tool, sources, tmp_path / 'again', 0))
    assert sorted(again) == sorted(first)
    assert [p for p in first if first[p] != again[p]] == []
    other = read_tree(generate(tool, sources, tmp_path / 'other', 1))
    assert sorted(other) == sorted(first)
    jpegs = [p for p in first if p.endswith('.jpg')]
    assert len(jpegs) == 3 * 12 + 7
    assert all(first[p] != other[p] for p in jpegs)


def test_label_maps_and_masks_are_the_alpha_masks_after_occlusion(scenes, sources):
    from pycocotools import mask as mask_utils
    ade_classes = load_json(scenes / 'ade/classes.json')['classes']
    fine_classes = load_json(scenes / 'cocostuff/classes.json')['classes']
    assert ade_classes == ['bird', 'flower', 'fruit', 'plant', 'street object']
    assert fine_classes == ['bird', 'flag', 'flower', 'fruit', 'mushroom', 'nut', 'road sign',
                            'tree']
    occluded = 0
    for split, ade, coco in (('train', 'training', 'train2017'), ('val', 'validation', 'val2017')):
        instances = load_json(scenes / f'coco/annotations/instances_{split}.json')
        names = {c['name']: c['id'] for c in load_json(
            scenes / 'coco/annotations/instances_val.json')['categories']}
        for image_id, record in enumerate(load_json(scenes / f'meta/{split}.json'), 1):
            objects = record['objects']
            assert 1 <= len(objects) <= 4
            visible = visible_masks(objects, sources['stamps'])
            occluded += sum(int((full_mask(o, sources['stamps']) & ~v).sum() > 0)
                            for o, v in zip(objects, visible))
            expected_ade = np.zeros((SIZE, SIZE), np.uint8)
            expected_fine = np.full((SIZE, SIZE), 255, np.uint8)
            for obj, mask in zip(objects, visible):
                expected_ade[mask] = ade_classes.index(obj['coarse']) + 1
                expected_fine[mask] = fine_classes.index(obj['fine'])
            stem = record['file']
            np.testing.assert_array_equal(
                read_png(scenes / f'ade/annotations/{ade}/{stem}.png'), expected_ade)
            np.testing.assert_array_equal(
                read_png(scenes / f'cocostuff/annotations/{coco}/{stem}_labelTrainIds.png'),
                expected_fine)
            anns = [a for a in instances['annotations'] if a['image_id'] == image_id]
            assert [a['category_id'] for a in anns] == [names[o['name']] for o in objects]
            for ann, mask in zip(anns, visible):
                np.testing.assert_array_equal(mask_utils.decode(ann['segmentation']), mask)
                assert ann['area'] == mask.sum() > 0
    assert occluded > 0  # the check above covered occlusion, not only isolated objects


def test_single_object_mask_is_the_resized_alpha(tool, sources, tmp_path):
    out = generate(tool, sources, tmp_path / 'single', 3, '--max-objects', '1')
    for record in load_json(out / 'meta/val.json'):
        (obj,) = record['objects']
        mask = full_mask(obj, sources['stamps'])
        assert mask.sum() >= 16
        labels = read_png(out / f'ade/annotations/validation/{record["file"]}.png')
        np.testing.assert_array_equal(labels > 0, mask)


def test_held_out_categories_absent_from_train(scenes):
    split = load_json(scenes / 'cocostuff/classes.json')
    assert len(split['unseen']) == 2 and set(split['unseen']).isdisjoint(split['seen'])
    unseen_ids = [split['classes'].index(c) for c in split['unseen']]
    train_maps = [read_png(scenes / 'cocostuff/annotations/train2017' / n)
                  for n in sorted(os.listdir(scenes / 'cocostuff/annotations/train2017'))]
    assert not np.isin(np.stack(train_maps), unseen_ids).any()
    val_fine = {o['fine'] for r in load_json(scenes / 'meta/val.json') for o in r['objects']}
    assert val_fine - set(split['seen'])  # 8 fine categories, 6 val scenes: some unseen at val

    names = load_json(scenes / 'coco/annotations/category_split.json')
    train = load_json(scenes / 'coco/annotations/instances_train.json')
    assert names['novel'] and set(names['novel']).isdisjoint(names['base'])
    assert {c['name'] for c in train['categories']} == set(names['base'])
    train_ids = {c['id'] for c in train['categories']}
    assert {a['category_id'] for a in train['annotations']} <= train_ids


def test_ade_and_cocostuff_trees_load_in_mmseg(scenes):
    from mmseg.datasets import ADE20KDataset, BaseSegDataset, COCOStuffDataset
    from mmseg.datasets.transforms import LoadAnnotations
    meta = load_json(scenes / 'ade/classes.json')
    ade = BaseSegDataset(
        data_root=str(scenes / 'ade'), metainfo=dict(classes=meta['classes'],
                                                     palette=meta['palette']),
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
        pipeline=[dict(type='LoadImageFromFile'), LoadAnnotations()])  # reads the dataset's flag
    assert len(ade) == 6 and list(ade.metainfo['classes']) == meta['classes']
    sample = ade[0]
    raw = read_png(scenes / 'ade/annotations/validation/scene_000000.png').astype(np.int64)
    np.testing.assert_array_equal(sample['gt_seg_map'], np.where(raw == 0, 255, raw - 1))
    assert sample['img'].shape == (SIZE, SIZE, 3)
    # mmseg's own classes read the layouts (their 150 / 171 class names aside).
    assert len(ADE20KDataset(data_root=str(scenes / 'ade'), data_prefix=dict(
        img_path='images/training', seg_map_path='annotations/training'))) == 6
    stuff = COCOStuffDataset(data_root=str(scenes / 'cocostuff'), data_prefix=dict(
        img_path='images/val2017', seg_map_path='annotations/val2017'))
    assert len(stuff) == 6 and all(osp.isfile(d['seg_map_path']) for d in stuff.data_list)
    fine = load_json(scenes / 'cocostuff/classes.json')
    open_vocab = BaseSegDataset(
        data_root=str(scenes / 'cocostuff'), metainfo=dict(classes=fine['classes']),
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        img_suffix='.jpg', seg_map_suffix='_labelTrainIds.png',
        pipeline=[dict(type='LoadImageFromFile'), LoadAnnotations()])
    labels = np.unique(np.concatenate([open_vocab[i]['gt_seg_map'].ravel() for i in range(6)]))
    assert 255 in labels and set(labels[labels != 255]) <= set(range(len(fine['classes'])))


def test_coco_and_lvis_json(scenes):
    from lvis import LVIS
    from pycocotools.coco import COCO
    coco = COCO(str(scenes / 'coco/annotations/instances_val.json'))
    assert len(coco.getImgIds()) == 6 and coco.getAnnIds()
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert ann['area'] == mask.sum()
        assert ann['bbox'] == [cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]]
        image = coco.loadImgs(ann['image_id'])[0]
        assert osp.isfile(scenes / 'coco/val2017' / image['file_name'])

    train = load_json(scenes / 'coco/annotations/instances_train.json')
    lvis_train = LVIS(str(scenes / 'coco/annotations/lvis_v1_train.json'))
    lvis_val = LVIS(str(scenes / 'coco/annotations/lvis_v1_val.json'))
    counts = {}
    for ann in train['annotations']:
        counts.setdefault(ann['category_id'], set()).add(ann['image_id'])
    rare = set()
    for cat in lvis_train.load_cats(None):
        assert cat['image_count'] == len(counts.get(cat['id'], ()))
        # 6 train images: rare <= 1 image (at least 1), common <= 2, frequent above.
        assert cat['frequency'] == ('r' if cat['image_count'] <= 1 else
                                    'c' if cat['image_count'] <= 2 else 'f')
        if cat['frequency'] == 'r':
            rare.add(cat['id'])
    assert rare and {a['category_id'] for a in lvis_train.load_anns(None)}.isdisjoint(rare)
    assert len(lvis_train.load_anns(None)) == sum(
        1 for a in train['annotations'] if a['category_id'] not in rare)
    assert len(lvis_val.load_anns(None)) == len(coco.getAnnIds())
    for image in lvis_val.load_imgs(None):
        present = {a['category_id'] for a in lvis_val.img_ann_map[image['id']]}
        assert present.isdisjoint(image['neg_category_ids'])
        assert len(present) + len(image['neg_category_ids']) == len(lvis_val.cats)
        assert image['not_exhaustive_category_ids'] == []


def test_nyu_depth_tree_holds_the_placed_depths(scenes, sources):
    from mmseg.datasets import NYUDataset
    from mmseg.datasets.transforms import LoadDepthAnnotation
    camera = load_json(scenes / 'nyu/camera.json')
    dataset = NYUDataset(
        data_root=str(scenes / 'nyu'),
        data_prefix=dict(img_path='images/test', depth_map_path='annotations/test'),
        pipeline=[dict(type='LoadImageFromFile'),
                  LoadDepthAnnotation(depth_rescale_factor=1e-3)])  # mmseg's NYU config
    assert len(dataset) == 4 and camera['depth_rescale_factor'] == 1e-3
    records = load_json(scenes / 'meta/depth_test.json')
    floor_rows = np.arange(SIZE) + 0.5 - camera['cy']
    with np.errstate(divide='ignore'):
        floor = np.where(floor_rows > 0, camera['focal'] * camera['camera_height'] / floor_rows,
                         camera['far'])
    floor = np.minimum(floor, camera['far'])[:, None].repeat(SIZE, 1)
    for index, record in enumerate(records):
        sample = dataset[index]
        depth = sample['gt_depth_map']
        assert depth.shape == (SIZE, SIZE) and sample['depth_map_path'].endswith(
            f'{record["file"]}.png')
        objects = record['objects']
        placed = [o['depth'] for o in objects]
        assert placed == sorted(placed, reverse=True)  # painted far to near
        expected = floor.copy()
        for obj, mask in zip(objects, visible_masks(objects, sources['stamps'])):
            expected[mask] = obj['depth']
            # The object stands on the ground line of its depth.
            bottom = camera['cy'] + camera['focal'] * camera['camera_height'] / obj['depth']
            assert obj['top'] + obj['height'] == round(bottom)
        np.testing.assert_allclose(depth, expected, atol=5e-4)


def test_nyu_scene_classes_are_the_nearest_objects(scenes):
    """nyu/classes.json names each depth scene's class (its nearest object's super-category),
    which genrep.ScenesDepthDataset hands on as mmseg's category_id."""
    from genrep.datasets import ScenesDepthDataset
    classes = load_json(scenes / 'ade/classes.json')['classes']
    assert load_json(scenes / 'nyu/classes.json')['classes'] == classes
    dataset = ScenesDepthDataset(
        data_root=str(scenes / 'nyu'), split='test',
        data_prefix=dict(img_path='images/test', depth_map_path='annotations/test'))
    assert dataset.metainfo['classes'] == tuple(classes)
    for index, record in enumerate(load_json(scenes / 'meta/depth_test.json')):
        info = dataset.get_data_info(index)
        assert info['img_path'].endswith(f'{record["file"]}.jpg')
        nearest = min(record['objects'], key=lambda o: o['depth'], default=None)
        expected = classes.index(nearest['coarse']) if nearest else -1
        assert info['category_id'] == expected


def test_missing_sources_fail_with_one_line(tool, sources, tmp_path):
    with pytest.raises(SystemExit) as error:
        tool.main(['--out', str(tmp_path / 'out'), '--stamps-dir', str(tmp_path / 'none')])
    message = str(error.value)
    assert '\n' not in message and str(tmp_path / 'none') in message
    assert 'tools/install.sh' in message
    with pytest.raises(SystemExit) as error:
        tool.main(['--out', str(tmp_path / 'out'), '--stamps-dir', sources['stamps'],
                   '--templates-dir', str(tmp_path)])
    assert str(tmp_path) in str(error.value) and 'template photos' in str(error.value)


def test_scenes_seg_dataset_reads_its_classes_from_the_tree(scenes, tmp_path):
    """genrep.ScenesSegDataset: mmseg's BaseSegDataset with the tree's classes.json, as the scenes
    configs build it; a tree without classes.json is one clear error naming the file."""
    from mmseg.datasets.transforms import LoadAnnotations

    from genrep.datasets import ScenesSegDataset
    meta = load_json(scenes / 'ade/classes.json')
    data = ScenesSegDataset(
        data_root=str(scenes / 'ade'),
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
        pipeline=[dict(type='LoadImageFromFile'), LoadAnnotations()])
    assert list(data.metainfo['classes']) == meta['classes']
    assert [list(c) for c in data.metainfo['palette']] == meta['palette']
    raw = read_png(scenes / 'ade/annotations/validation/scene_000000.png').astype(np.int64)
    np.testing.assert_array_equal(data[0]['gt_seg_map'], np.where(raw == 0, 255, raw - 1))
    with pytest.raises(FileNotFoundError, match='classes.json not found; make the scenes'):
        ScenesSegDataset(data_root=str(tmp_path))

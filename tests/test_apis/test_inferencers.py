"""The inferencers on each task's config, from tiny randomly initialised checkpoints written
here, on an image path and a folder: the drawing written per image, predictions of the right
shape, equal to the toolkits' own single-image inference (mmseg ``inference_model``, mmdet
``inference_detector``) or to a hand-run forward (classification); the open-vocabulary model
scores the user's names."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from conftest import REPO_ROOT
from genrep.apis import build_inferencer, config_task, init_model

SCENE_CLASSES = ['bird', 'boat', 'dog', 'flower', 'fruit', 'tree']


def config(name: str) -> str:
    return osp.join(REPO_ROOT, name)


def write_images(root, sizes=((40, 56), (64, 48)), channels=3, seed=0):
    """A folder of RGB (or gray) images of different sizes; returns their paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    paths = []
    for index, (h, w) in enumerate(sizes):
        shape = (h, w, channels) if channels > 1 else (h, w)
        path = osp.join(root, f'img_{index}.png')
        Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def write_scene_classes(root='data/scenes'):
    """The classes.json of each scenes tree the configs name (relative to the working dir)."""
    trees = {
        'ade': dict(classes=SCENE_CLASSES, palette=[[10 * i, 0, 0] for i in range(6)]),
        'cocostuff': dict(classes=SCENE_CLASSES, seen=SCENE_CLASSES[:4], unseen=SCENE_CLASSES[4:]),
        'nyu': dict(classes=SCENE_CLASSES, train=[], test=[]),
    }
    for tree, meta in trees.items():
        os.makedirs(osp.join(root, tree), exist_ok=True)
        with open(osp.join(root, tree, 'classes.json'), 'w') as f:
            json.dump(meta, f)


def tiny_checkpoint(cfg, path):
    torch.manual_seed(0)
    model = init_model(cfg)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.fixture
def scenes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_scene_classes()
    return tmp_path


def drawn(out_dir, paths):
    return sorted(os.listdir(osp.join(out_dir, 'vis'))) == sorted(
        osp.splitext(osp.basename(p))[0] + '.png' for p in paths)


@pytest.mark.parametrize('name', ['tests/data/configs/fmnist_tiny.py',
                                  'tests/data/configs/fmnist_genrep_tiny_stage1.py'])
def test_classification_on_a_path_and_a_folder(name, tmp_path):
    cfg = Config.fromfile(config(name))
    assert config_task(cfg) == 'classification'
    weights = tiny_checkpoint(cfg, tmp_path / 'model.pth')
    paths = write_images(tmp_path / 'images', sizes=((28, 28), (30, 26)))
    inferencer = build_inferencer(cfg, weights)

    single = inferencer(paths[0], out_dir=str(tmp_path / 'one'))
    assert drawn(tmp_path / 'one', paths[:1])
    folder = inferencer(str(tmp_path / 'images'), out_dir=str(tmp_path / 'all'))
    assert drawn(tmp_path / 'all', paths)
    assert len(single) == 1 and len(folder) == 2
    fashion = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
               'Sneaker', 'Bag', 'Ankle boot')
    for result in folder:
        assert result['pred_scores'].shape == (10, )
        assert result['pred_class'] == fashion[result['pred_label']]

    # By hand: the image read as grayscale (the dataset's one channel), fitted into the
    # dataset's 28 x 28 (30 x 26 -> 28 x 24, cv2's area interpolation), padded bottom-right to
    # 32 x 32, mapped to [-1, 1], the model's predict.
    model = inferencer.model
    for path, result in zip(paths, folder):
        gray = np.asarray(Image.open(path).convert('L'))
        if gray.shape != (28, 28):
            gray = cv2.resize(gray, (24, 28), interpolation=cv2.INTER_AREA)
        gray = gray.astype(np.float32)
        padded = np.zeros((32, 32), np.float32)
        padded[:gray.shape[0], :gray.shape[1]] = gray
        x = torch.from_numpy((padded - 127.5) / 127.5)[None, None]
        with torch.no_grad():
            scores = model(x, mode='predict')[0].pred_score
        np.testing.assert_allclose(result['pred_scores'], scores.numpy(), atol=1e-5)
    np.testing.assert_allclose(single[0]['pred_scores'], folder[0]['pred_scores'], atol=1e-6)


@pytest.mark.parametrize('name', ['configs/genrep/scenes_seg_unet.py',
                                  'configs/genrep/scenes_seg_genrep_stage1.py'])
def test_segmentation_equals_mmseg_inference_model(name, scenes):
    from mmseg.apis import inference_model
    cfg = Config.fromfile(config(name))
    assert config_task(cfg) == 'segmentation'
    weights = tiny_checkpoint(cfg, scenes / 'model.pth')
    paths = write_images(scenes / 'images')
    inferencer = build_inferencer(cfg, weights)
    assert list(inferencer.model.dataset_meta['classes']) == SCENE_CLASSES

    result = inferencer(str(scenes / 'images'), out_dir='out')
    assert drawn('out', paths)
    for path, mask in zip(paths, result['predictions']):
        h, w = Image.open(path).size[::-1]
        assert mask.shape == (h, w)
        reference = inference_model(inferencer.model, path).pred_sem_seg.data[0].numpy()
        np.testing.assert_array_equal(mask, reference)
    single = inferencer(paths[1], out_dir='one')
    np.testing.assert_array_equal(single['predictions'], result['predictions'][1])
    assert drawn('one', paths[1:])


def test_open_vocabulary_segmentation_scores_the_users_names(scenes):
    cfg = Config.fromfile(config('configs/genrep/scenes_ov_seg_unet.py'))
    cfg.model.decode_head.text_encoder.cache_dir = None
    weights = tiny_checkpoint(cfg, scenes / 'model.pth')
    paths = write_images(scenes / 'images')
    inferencer = build_inferencer(cfg, weights, texts='cat, tree,  red car')
    head = inferencer.model.decode_head
    assert head.class_names == ['cat', 'tree', 'red car']
    assert inferencer.model.dataset_meta['classes'] == ('cat', 'tree', 'red car')
    assert len(inferencer.visualizer.dataset_meta['palette']) == 3
    result = inferencer(paths[0], out_dir='out')
    assert drawn('out', paths[:1])
    assert result['predictions'].shape == (40, 56)
    assert set(np.unique(result['predictions'])) <= {0, 1, 2}

    with pytest.raises(ValueError, match='closed-set model'):
        closed = Config.fromfile(config('configs/genrep/scenes_seg_unet.py'))
        build_inferencer(closed, tiny_checkpoint(closed, scenes / 'closed.pth'), texts='cat')


def test_depth_maps_of_a_folder(scenes):
    cfg = Config.fromfile(config('configs/genrep/scenes_depth_unet.py'))
    assert config_task(cfg) == 'depth'
    weights = tiny_checkpoint(cfg, scenes / 'model.pth')
    paths = write_images(scenes / 'images')
    result = build_inferencer(cfg, weights)(str(scenes / 'images'), out_dir='out')
    assert drawn('out', paths)
    for path, depth in zip(paths, result['predictions']):
        assert depth.shape == Image.open(path).size[::-1]
        assert np.isfinite(depth).all() and depth.min() >= 0


def test_detection_equals_mmdet_inference_detector(tmp_path):
    from mmdet.apis import inference_detector
    cfg = Config.fromfile(config('tests/data/configs/faster_rcnn_diffusion_tiny.py'))
    cfg.model.test_cfg.rpn.max_per_img = 50
    cfg.model.test_cfg.rcnn.max_per_img = 5
    for step in cfg.test_dataloader.dataset.pipeline:  # mmdet's COCO base: 1333 x 800
        if step['type'] == 'Resize':
            step['scale'] = (64, 64)
    assert config_task(cfg) == 'detection'
    weights = tiny_checkpoint(cfg, tmp_path / 'model.pth')
    paths = write_images(tmp_path / 'images')
    inferencer = build_inferencer(cfg, weights)
    result = inferencer(str(tmp_path / 'images'), out_dir=str(tmp_path / 'out'))
    assert drawn(tmp_path / 'out', paths)
    for path, boxes in zip(paths, result['predictions']):
        reference = inference_detector(inferencer.model, path).pred_instances
        assert len(boxes['bboxes']) == len(reference) > 0
        np.testing.assert_allclose(np.asarray(boxes['bboxes']), reference.bboxes.numpy(),
                                   atol=1e-3)
        assert boxes['labels'] == reference.labels.tolist()


def test_open_vocabulary_detection_names_boxes_with_the_users_texts(tmp_path):
    """The tiny Faster R-CNN with genrep's OpenVocabBBoxHead (trained names: 4), asked for 3
    others: every box carries one of them, drawn under their names."""
    cfg = Config.fromfile(config('tests/data/configs/faster_rcnn_diffusion_tiny.py'))
    cfg.model.roi_head.bbox_head = dict(
        type='genrep.OpenVocabBBoxHead', class_names=['bird', 'dog', 'tree', 'boat'],
        num_classes=None, text_encoder=dict(type='genrep.MiniLMTextEncoder', cache_dir=None),
        in_channels=32, fc_out_channels=64, reg_class_agnostic=True)
    cfg.model.test_cfg.rpn.max_per_img = 50
    cfg.model.test_cfg.rcnn.max_per_img = 5
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (64, 64)
    weights = tiny_checkpoint(cfg, tmp_path / 'model.pth')
    paths = write_images(tmp_path / 'images')
    inferencer = build_inferencer(cfg, weights, texts='cat, red car, lamp')
    head = inferencer.model.roi_head.bbox_head
    assert head.class_names == ['cat', 'red car', 'lamp']
    assert inferencer.model.dataset_meta['classes'] == ('cat', 'red car', 'lamp')
    result = inferencer(paths[0], out_dir=str(tmp_path / 'out'))
    assert drawn(tmp_path / 'out', paths[:1])
    boxes = result['predictions'][0]
    assert 0 < len(boxes['labels']) <= 5 and set(boxes['labels']) <= {0, 1, 2}
    assert np.asarray(boxes['bboxes']).shape == (len(boxes['labels']), 4)


def test_the_checkpoints_class_names_come_first(tmp_path):
    """A checkpoint saved by the Runner carries its dataset's names (meta.dataset_meta): they,
    not the config's dataset, name the predictions."""
    cfg = Config.fromfile(config('tests/data/configs/fmnist_tiny.py'))
    torch.manual_seed(0)
    names = [f'kind {i}' for i in range(10)]
    torch.save({'state_dict': init_model(cfg).state_dict(),
                'meta': {'dataset_meta': {'classes': names}}}, tmp_path / 'model.pth')
    paths = write_images(tmp_path / 'images', sizes=((28, 28), ), channels=1)
    inferencer = build_inferencer(cfg, str(tmp_path / 'model.pth'))
    assert inferencer.model.dataset_meta['classes'] == names
    result = inferencer(paths[0])[0]
    assert result['pred_class'] == names[result['pred_label']]

"""The open-vocabulary scenes job (`make ovseg`, configs/genrep/scenes_ov_seg_unet.py) runs end to
end on a few 64-px scenes written here in the scenes' COCO-Stuff layout (classes.json with seen and
unseen lists, *_labelTrainIds.png, 255 unlabelled): trained on the seen names only (a training
scene holding an unseen object has those pixels ignored), tested on all names through
OpenVocabularyHook, mIoU over all, seen and unseen classes, overlays by SegVisualizationHook."""
import glob
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT
from metric_oracles import class_ious, mean_iou, record_test_predictions

CLASSES = ['bird', 'boat', 'dog', 'flower', 'fruit', 'tree']
SEEN = ['bird', 'flower', 'fruit', 'tree']
UNSEEN = ['boat', 'dog']
ROOT = 'data/scenes/cocostuff'


def write_tree(root, num_train=4, num_val=2, size=64, seed=0):
    """Two objects (coloured squares) a scene on a noisy background left unlabelled (255): two
    seen ones in training, where scene 0 also holds an unseen 'dog' that training must ignore; a
    seen and an unseen one in each test scene (so neither subset's mIoU is empty)."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (len(CLASSES), 3))
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'classes.json'), 'w') as f:
        json.dump(dict(classes=CLASSES, palette=palette.tolist(), seen=SEEN, unseen=UNSEEN,
                       ignore_index=255), f)
    for split, count in (('train2017', num_train), ('val2017', num_val)):
        os.makedirs(osp.join(root, 'images', split))
        os.makedirs(osp.join(root, 'annotations', split))
        for index in range(count):
            label = np.full((size, size), 255, np.uint8)
            if split == 'train2017':
                names = list(rng.choice(SEEN, size=2, replace=False)) + ['dog'] * (index == 0)
            else:
                names = [SEEN[index % len(SEEN)], UNSEEN[index % len(UNSEEN)]]
            for k, name in enumerate(names):
                top = 4 + 20 * k
                label[top:top + 18, 8 + 16 * k:30 + 16 * k] = CLASSES.index(name)
            image = rng.integers(0, 256, (size, size, 3))
            labelled = label != 255
            image[labelled] = palette[label[labelled]]
            stem = f'scene_{index:06d}'
            Image.fromarray(image.astype(np.uint8)).save(
                osp.join(root, 'images', split, f'{stem}.jpg'), quality=95)
            Image.fromarray(label).save(
                osp.join(root, 'annotations', split, f'{stem}_labelTrainIds.png'))


def build_runner(work_dir, iters=2):
    """tools/train.py's Runner for the job's config, 2 iterations, a batch of 2, every test image
    drawn, the text embeddings not cached."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from genrep.engine.config_checks import validate_config
    from genrep.engine.runner_utils import use_resumable_loops
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'genrep', 'scenes_ov_seg_unet.py'))
    cfg.merge_from_dict({
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False,
        'default_hooks.checkpoint.interval': iters, 'default_hooks.visualization.interval': 1,
        'model.decode_head.text_encoder.cache_dir': None, 'randomness.seed': 0,
        'visualizer.name': f'visualizer_{work_dir}'})
    cfg.work_dir = str(work_dir)
    validate_config(cfg, cfg.filename)
    use_resumable_loops(cfg)
    return Runner.from_cfg(cfg)


def test_scenes_ov_seg_trains_on_seen_names_and_tests_on_all(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tree(ROOT)
    runner = build_runner('work_dirs/scenes_ov_seg_unet')
    head = runner.model.decode_head
    assert type(head).__name__ == 'OpenVocabFPNHead'
    assert head.class_names == SEEN
    assert list(runner.train_dataloader.dataset.metainfo['classes']) == SEEN

    columns, train_labels = [], []
    head.conv_seg.register_forward_hook(lambda _m, _args, out: columns.append(out.shape[-1]))
    loss_by_feat = head.loss_by_feat

    def recording_loss_by_feat(seg_logits, batch_data_samples):
        train_labels.extend(s.gt_sem_seg.data.clone() for s in batch_data_samples)
        return loss_by_feat(seg_logits, batch_data_samples)

    head.loss_by_feat = recording_loss_by_feat
    runner.train()
    assert math.isfinite(runner.message_hub.get_scalar('train/decode.loss_ce').current())
    # Training scores the 4 seen names and its labels index them.
    assert columns[:2] == [len(SEEN)] * 2
    labels = torch.cat([t.flatten() for t in train_labels]).unique().tolist()
    assert set(labels) <= set(range(len(SEEN))) | {255}
    # The unseen dog of training scene 0 (alone in rows 44-61) is ignored.
    raw = np.array(Image.open(f'{ROOT}/annotations/train2017/scene_000000_labelTrainIds.png'))
    assert (raw[44:62] == CLASSES.index('dog')).sum() > 0
    sample = runner.train_dataloader.dataset[0]['data_samples']
    assert sample.img_path.endswith('scene_000000.jpg')
    assert (sample.gt_sem_seg.data[0, 44:62] == 255).all()
    # The validation after training already named all 6 classes.
    assert columns[2:] and set(columns[2:]) == {len(CLASSES)}

    recorder = record_test_predictions(runner)
    metrics = runner.test()
    assert head.class_names == CLASSES
    assert set(metrics) >= {'mIoU', 'mIoU_seen', 'mIoU_unseen', 'aAcc'}
    # each mIoU against pixels counted by hand on the test loop's predictions over all 6 names
    ious = class_ious(recorder.samples, len(CLASSES))
    subsets = dict(mIoU=CLASSES, mIoU_seen=SEEN, mIoU_unseen=UNSEEN)
    for key, names in subsets.items():
        expected = mean_iou(ious[[CLASSES.index(n) for n in names]])
        assert metrics[key] == pytest.approx(expected, abs=0.006), key
    overlays = glob.glob('work_dirs/scenes_ov_seg_unet/*/vis_data/vis_image/test_*.png')
    assert len(overlays) == 2

"""The scenes open-vocabulary detection job (`make ovdet`) end to end on a few 64-px scenes written
by tools/dataset_converters/make_scenes.py from the installed tuxpaint stamps: each config as it is
(2 iterations instead of hundreds), stage 0 -> stage 1 (region L_gen_distil) and its control, each
loading stage 0's checkpoint, then the test over all 17 super-categories with mmdet's OVCocoMetric
(AP50 base / novel / all) and the boxes drawn by DetVisualizationHook."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import REPO_ROOT
from metric_oracles import coco_ap50, record_test_predictions
from test_scenes_seg_jobs import make_scenes, pytestmark, run  # noqa: F401 (the data mark)


def test_config_vocabulary_is_the_tools_split(tmp_path):
    make_scenes(tmp_path / 'scenes')
    import json
    with open(tmp_path / 'scenes/coco/annotations/category_split_coarse.json') as f:
        split = json.load(f)
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/genrep/scenes_ovdet_unet.py'))
    assert list(cfg.base_classes) == split['base'] and list(cfg.novel_classes) == split['novel']
    assert cfg.model.roi_head.bbox_head.class_names == cfg.base_classes
    assert cfg.model.backbone.denoiser.config.num_class_embeds == len(split['base']) + 1


@pytest.mark.slow
def test_scenes_ovdet_genrep_stages_chain_and_test(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_scenes(tmp_path / 'data' / 'scenes')
    # every box scored (two iterations leave all scores low), so that AP is computed
    options = {'model.perception.test_cfg.rcnn.score_thr': 0.0}
    stage0 = run('scenes_ovdet_genrep_stage0.py', 'work_dirs/scenes_ovdet_genrep_stage0', 2,
                 **options)
    assert math.isfinite(stage0.message_hub.get_scalar('train/genera_loss_diffusion').current())
    assert not any(k.startswith('val/') for k in stage0.message_hub.log_scalars)

    ckpt0 = 'work_dirs/scenes_ovdet_genrep_stage0/iter_2.pth'
    saved = torch.load(ckpt0, map_location='cpu', weights_only=False)['state_dict']
    assert 'perception.backbone.denoiser.model.class_embedding.weight' in saved
    distil = run('scenes_ovdet_genrep_stage1.py', 'work_dirs/s1', 2, load_from=ckpt0,
                 **{'default_hooks.visualization.interval': 1, **options})
    loss = distil.message_hub.get_scalar('train/percept_loss_gen_distil').current()
    assert math.isfinite(loss) and loss >= 0
    recorder = record_test_predictions(distil)
    metrics = distil.test()
    # AP50 over base, novel and all names by pycocotools on the test loop's own predictions
    cfg = distil.cfg
    names = list(cfg.all_classes)
    for name, subset in (('coco/base_ap50', cfg.base_classes),
                         ('coco/novel_ap50', cfg.novel_classes), ('coco/bbox_mAP_50', names)):
        expected = coco_ap50(cfg.test_evaluator.ann_file, recorder.samples, names, list(subset))
        assert metrics[name] == pytest.approx(expected, abs=1e-3), name
    # the test vocabulary: all 17 names (OpenVocabularyHook), the head's columns follow
    head = distil.model.perception.roi_head.bbox_head
    assert head.num_classes == 17
    drawn = glob.glob('work_dirs/s1/*/vis_data/vis_image/*.png')
    assert drawn

    control = run('scenes_ovdet_genrep_stage1_nodistil.py', 'work_dirs/s1c', 2, load_from=ckpt0,
                  **options)
    assert control.model.posterior is None
    assert 'train/percept_loss_gen_distil' not in control.message_hub.log_scalars

"""The scenes segmentation jobs (`make seg`, `make seg-genrep`) run end to end on a few 64-px scenes
written by tools/dataset_converters/make_scenes.py from the installed tuxpaint stamps: each config
as it is (2 iterations instead of 1200), stage 0 -> stage 1 (dense L_gen_distil) and its control
-> stage 2, each stage loading the previous one's checkpoint as `load_from` says, then the test
with mmseg's IoUMetric and the overlays of SegVisualizationHook."""
import glob
import math
import os.path as osp

import pytest
import torch

from conftest import REPO_ROOT, load_tool
from metric_oracles import class_ious, mean_iou, record_test_predictions

STAMPS = '/usr/share/tuxpaint/stamps'
TEMPLATES = '/usr/share/tuxpaint/templates'
pytestmark = pytest.mark.usefixtures('tuxpaint')  # conftest: required, not skipped


def make_scenes(out):
    tool = load_tool('tools/dataset_converters/make_scenes.py')
    tool.main(['--out', str(out), '--seed', '0', '--num-train', '4', '--num-val', '2',
               '--num-depth-train', '1', '--num-depth-test', '1', '--size', '64'])


def run(config, work_dir, iters, **options):
    """tools/train.py's Runner for ``config`` with ``iters`` iterations, the test loop after."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from genrep.engine.config_checks import validate_config
    from genrep.engine.runner_utils import use_resumable_loops
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'genrep', config))
    cfg.merge_from_dict({
        'train_cfg.max_iters': iters,
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False,
        'default_hooks.checkpoint.interval': iters, 'randomness.seed': 0,
        # mmengine keeps one visualizer per name in a process: one name a run (the absolute work
        # dir: tests reuse relative names), as one process a run (tools/train.py) has.
        'visualizer.name': f'visualizer_{osp.abspath(work_dir)}', **options})
    if cfg.train_cfg.get('val_begin', 1) <= iters:
        cfg.train_cfg.val_interval = iters
    cfg.work_dir = str(work_dir)
    validate_config(cfg, cfg.filename)
    use_resumable_loops(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_scenes_segmentation_genrep_stages_chain_and_test(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_scenes(tmp_path / 'data' / 'scenes')
    stage0 = run('scenes_seg_genrep_stage0.py', 'work_dirs/scenes_seg_genrep_stage0', 2)
    assert math.isfinite(stage0.message_hub.get_scalar('train/genera_loss_diffusion').current())
    # Stage 0 trains generation alone and validates nothing.
    assert not any(k.startswith('val/') for k in stage0.message_hub.log_scalars)

    ckpt0 = 'work_dirs/scenes_seg_genrep_stage0/iter_2.pth'
    distil = run('scenes_seg_genrep_stage1.py', 'work_dirs/s1', 2, load_from=ckpt0)
    loss = distil.message_hub.get_scalar('train/percept_loss_gen_distil').current()
    assert math.isfinite(loss) and loss > 0
    # The denoiser the teacher reads is the one stage 0 trained.
    saved = torch.load(ckpt0, map_location='cpu', weights_only=False)['state_dict']
    key = 'perception.backbone.denoiser.model.class_embedding.weight'
    assert key in saved
    control = run('scenes_seg_genrep_stage1_nodistil.py', 'work_dirs/s1c', 2, load_from=ckpt0)
    assert control.model.posterior is None
    assert 'train/percept_loss_gen_distil' not in control.message_hub.log_scalars
    recorder = record_test_predictions(control)
    metrics = control.test()
    # mmseg's IoUMetric against pixels counted by hand on the test loop's own predictions
    classes = control.test_loop.dataloader.dataset.metainfo['classes']
    assert len(recorder.samples) == 2
    expected = mean_iou(class_ious(recorder.samples, len(classes)))
    assert metrics['mIoU'] == pytest.approx(expected, abs=0.006)

    joint = run('scenes_seg_genrep_stage2.py', 'work_dirs/s2', 2,
                load_from='work_dirs/s1/iter_2.pth', **{'default_hooks.visualization.interval': 1})
    for name in ('loss_percept', 'loss_genera', 'grad_cos_sim', 'percept_loss_gen_distil'):
        assert math.isfinite(joint.message_hub.get_scalar(f'train/{name}').current()), name
    metrics = joint.test()
    assert set(metrics) >= {'mIoU', 'aAcc', 'mAcc'}
    # SegVisualizationHook's overlays (every 10th test batch in the job; every batch here).
    overlays = glob.glob('work_dirs/s2/*/vis_data/vis_image/test_*.png')
    assert len(overlays) == 2

"""The scenes depth jobs (`make depth`, `make depth-genrep`) run end to end on a few 64-px scenes
written by tools/dataset_converters/make_scenes.py: the perception-only estimator (2 iterations
instead of 800) tested with mmseg's DepthMetric and its colour depth maps, then the GenRep chain
stage 0 -> stage 1 (the scene-class posterior distilled into the auxiliary head) and its control,
each stage loading the previous one's checkpoint."""
import glob
import math

import mmcv
import pytest

from metric_oracles import depth_errors, record_test_predictions
from test_scenes_seg_jobs import make_scenes, run

pytestmark = pytest.mark.usefixtures('tuxpaint')  # conftest: required, not skipped
DEPTH_METRICS = {'d1', 'd2', 'd3', 'abs_rel', 'rmse', 'log10'}


def test_scenes_depth_job_trains_and_tests_with_depth_maps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_scenes(tmp_path / 'data' / 'scenes')
    runner = run('scenes_depth_unet.py', 'work_dirs/depth', 2,
                 **{'default_hooks.visualization.interval': 1})
    assert math.isfinite(runner.message_hub.get_scalar('train/decode.loss_silog').current())
    recorder = record_test_predictions(runner)
    metrics = runner.test()
    assert set(metrics) >= DEPTH_METRICS
    # mmseg's DepthMetric against the errors computed by hand from the test loop's predictions
    # and the ground truth in the config's evaluation range
    evaluator = runner.cfg.test_evaluator
    expected = depth_errors(recorder.samples, evaluator.min_depth_eval, evaluator.max_depth_eval)
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    # mmseg's SegVisualizationHook renders the test scene's depth maps: the image over its
    # colour-mapped depth, ground truth beside prediction (every 10th batch in the job; here all).
    drawn = glob.glob('work_dirs/depth/*/vis_data/vis_image/test_*.png')
    assert len(drawn) == 1
    image = mmcv.imread(drawn[0])
    assert image.shape == (128, 128, 3)  # ground truth | prediction, each image over depth
    depth_half = image[64:].astype(int)
    assert (depth_half[..., 0] != depth_half[..., 2]).any()  # coloured, not grey


@pytest.mark.slow
def test_scenes_depth_genrep_stages_chain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_scenes(tmp_path / 'data' / 'scenes')
    stage0 = run('scenes_depth_genrep_stage0.py', 'work_dirs/scenes_depth_genrep_stage0', 2)
    assert math.isfinite(stage0.message_hub.get_scalar('train/genera_loss_diffusion').current())
    ckpt0 = 'work_dirs/scenes_depth_genrep_stage0/iter_2.pth'
    distil = run('scenes_depth_genrep_stage1.py', 'work_dirs/s1', 2, load_from=ckpt0)
    assert type(distil.model.perception.auxiliary_head).__name__ == 'SceneClassHead'
    hub = distil.message_hub
    assert math.isfinite(hub.get_scalar('train/percept_loss_gen_distil').current())
    assert math.isfinite(hub.get_scalar('train/percept_aux.loss_cls').current())
    control = run('scenes_depth_genrep_stage1_nodistil.py', 'work_dirs/s1c', 2, load_from=ckpt0)
    assert control.model.posterior is None
    assert 'train/percept_loss_gen_distil' not in control.message_hub.log_scalars
    assert set(control.test()) >= DEPTH_METRICS

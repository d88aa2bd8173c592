"""The scenes jobs resume exactly: the segmentation job (mmseg's pipeline: LoadImageFromFile,
LoadAnnotations, RandomResize, RandomCrop, RandomFlip, PhotoMetricDistortion, in the config's
persistent data worker) and the open-vocabulary detection job (mmdet's pipeline), each config as
it is, 4 iterations on the scenes of make_scenes.py, a checkpoint after each; resumed from
iterations 1, 2 and 3 (--resume), each ends at the uninterrupted run's weights (max |dW| <= 1e-6).
tools/train.py runs them in genrep's ResumableIterBasedTrainLoop in place of mmengine's
IterBasedTrainLoop, which restored no random states."""
import os.path as osp
import sys

import pytest
import torch
from conftest import REPO_ROOT

sys.path.insert(0, osp.join(REPO_ROOT, 'tests', 'test_jobs'))
from test_scenes_seg_jobs import make_scenes, pytestmark  # noqa: E402,F401 (the data mark)
from tiny_runs import max_abs_diff  # noqa: E402

ITERS = 4


def train(config, work_dir, resume_from=None):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from genrep.engine.config_checks import validate_config
    from genrep.engine.runner_utils import use_resumable_loops
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'genrep', config))
    cfg.merge_from_dict({
        'train_cfg.max_iters': ITERS, 'train_cfg.val_interval': ITERS + 1,
        'train_dataloader.batch_size': 2,
        'default_hooks.checkpoint.interval': 1, 'default_hooks.checkpoint.max_keep_ckpts': -1,
        'default_hooks.checkpoint.save_best': None,
        'visualizer.name': f'visualizer_{osp.abspath(work_dir)}'})
    cfg.work_dir = str(work_dir)
    cfg.resume = resume_from is not None
    cfg.load_from = resume_from
    validate_config(cfg, cfg.filename)
    use_resumable_loops(cfg)
    assert cfg.train_cfg.type == 'genrep.ResumableIterBasedTrainLoop'
    assert cfg.train_dataloader.num_workers == 1 and cfg.train_dataloader.persistent_workers
    Runner.from_cfg(cfg).train()
    return torch.load(osp.join(work_dir, f'iter_{ITERS}.pth'), map_location='cpu',
                      weights_only=False)['state_dict']


@pytest.mark.slow
@pytest.mark.parametrize('config', ['scenes_seg_unet.py', 'scenes_ovdet_unet.py'])
def test_scenes_job_resumes_from_every_checkpoint(tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path)
    make_scenes(tmp_path / 'data' / 'scenes')
    reference = train(config, tmp_path / 'whole')
    drift = {}
    for iteration in range(1, ITERS):
        weights = train(config, tmp_path / f'from_{iteration}',
                        resume_from=str(tmp_path / 'whole' / f'iter_{iteration}.pth'))
        drift[iteration] = max_abs_diff(weights, reference)
    print(f'{config}: max |dW| by resumed iteration {drift}')
    assert max(drift.values()) <= 1e-6, drift

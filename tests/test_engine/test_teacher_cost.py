"""The training log shows what the teacher costs: GenRep logs the denoiser rows its teacher
evaluated and its seconds each step (non-loss entries of L_percept), TeacherCostHook their share
of the step's wall time; tools/train.py adds the hook to any GenRep config with a teacher."""
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import REPO_ROOT
from genrep.engine.runner_utils import use_resumable_loops, use_teacher_cost_hook

STAGE1 = osp.join(REPO_ROOT, 'tests/data/configs/fmnist_genrep_tiny_stage1.py')


def test_use_teacher_cost_hook_only_for_a_genrep_teacher(monkeypatch):
    import genrep.engine.runner_utils as runner_utils
    logged = []
    monkeypatch.setattr(runner_utils, 'print_log', lambda message, **_: logged.append(message))
    cfg = Config.fromfile(STAGE1)
    before = [h['type'] for h in cfg.custom_hooks]
    use_teacher_cost_hook(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == before + ['genrep.TeacherCostHook']
    # the rewrite is logged, once: the second call changes nothing and says nothing
    assert len(logged) == 1 and logged[0].startswith('tools/train.py sets custom_hooks = [')
    use_teacher_cost_hook(cfg)  # once
    assert len(cfg.custom_hooks) == len(before) + 1 and len(logged) == 1
    plain = Config.fromfile(osp.join(REPO_ROOT, 'tests/data/configs/fmnist_tiny.py'))
    use_teacher_cost_hook(plain)
    assert not plain.get('custom_hooks') and len(logged) == 1
    use_resumable_loops(plain)
    assert plain.train_cfg.type == 'genrep.ResumableEpochBasedTrainLoop'
    assert logged[1].startswith(
        "tools/train.py sets train_cfg.type = 'genrep.ResumableEpochBasedTrainLoop'")


def test_the_log_shows_teacher_evaluations_and_share(stage1_training_cfg):
    runner = Runner.from_cfg(stage1_training_cfg())
    runner.train()

    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    rows = [row for row in map(json.loads, open(scalars)) if 'iter' in row]
    assert len(rows) == 2  # two iterations of 4 images, logged every iteration
    model = runner.model
    # distill_images=2 images x (true class + num_candidates=2) x the chain's denoiser steps.
    expected = 2 * (1 + model.num_candidates) * model.posterior.num_evaluations()
    assert expected == 2 * 3 * 4
    for row in rows:
        assert row['percept_teacher_evals'] == expected
        assert 0 < row['teacher_share'] < 1
        assert 'loss' in row and row['loss'] == pytest.approx(row['loss_percept'])
    # Per step (the logged 'time' is a running mean): the teacher's seconds over the step's.
    hub = runner.message_hub
    teacher, step, share = (hub.get_scalar(f'train/{key}').data[0]
                            for key in ('percept_teacher_time', 'time', 'teacher_share'))
    assert len(share) == 2
    np.testing.assert_allclose(share, np.asarray(teacher) / np.asarray(step), rtol=1e-6)

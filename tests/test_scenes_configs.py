"""The scenes jobs' configs after their _base_ refactor (configs/_base_/models/scenes_genrep.py):
each config resolves to the model, optimiser, schedule, hooks and starting checkpoint it resolved
to before it (tests/data/scenes_configs_resolved.json, written from the configs before the
refactor), so the jobs' figures stand."""
import glob
import json
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO_ROOT

SNAPSHOT = osp.join(REPO_ROOT, 'tests', 'data', 'scenes_configs_resolved.json')
# What a stage config sets: its model and the stage's runtime (the shared runtime base's other
# keys, logging and checkpoint hooks, change on their own).
KEYS = ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'custom_hooks', 'load_from')


def resolved(path: str) -> dict:
    """The config's KEYS, resolved through its _base_ chain, as JSON values."""
    cfg = Config.fromfile(path, import_custom_modules=False)
    return json.loads(json.dumps({key: cfg.get(key) for key in KEYS}, default=repr))


CONFIGS = sorted(osp.basename(p) for p in glob.glob(
    osp.join(REPO_ROOT, 'configs', 'genrep', 'scenes_*.py')))


@pytest.mark.parametrize('name', CONFIGS)
def test_scenes_config_resolves_as_before_its_bases(name):
    with open(SNAPSHOT) as f:
        before = json.load(f)
    assert sorted(before) == CONFIGS  # no config added or lost
    assert resolved(osp.join(REPO_ROOT, 'configs', 'genrep', name)) == before[name]

"""Every config under configs/genrep/ resolves, through its _base_ chain, to the dict it resolved to
before the configs were moved onto shared _base_ files (issue 27): every key the reference holds
(the keys the Runner and the tools read, and the helper variables), as JSON values (tuples read as
lists). A config may add top-level keys only as helper variables of its bases (as mmdet's
`train_pipeline`, `dataset_type`): names that neither mmengine's Runner nor genrep's tools read.

The reference, tests/data/configs_resolved.json, was written from the configs of commit 4a750d4
(configs/ last changed in da889b8) with

    python tests/test_config_bases.py --write

Rewrite it the same way only for a change meant to alter what a config resolves to, and say so in
that commit. A config written after the reference as a variant of one it holds is checked against
that one's reference with the variant's changes (DERIVED). tests/test_scenes_configs.py keeps its
own, narrower snapshot of the scenes configs."""
import copy
import glob
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REFERENCE = osp.join(REPO_ROOT, 'tests', 'data', 'configs_resolved.json')
CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO_ROOT, 'configs', 'genrep', '*.py')))

# Top-level keys that mmengine's Runner (Runner.from_cfg and Runner.__init__, FlexibleRunner),
# Config.fromfile and genrep's tools and config checks (genrep/engine/config_checks.py, tools/) read:
# a base may not add one of these behind a config's back.
RUNNER_KEYS = frozenset({
    'model', 'work_dir', 'experiment_name', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'val_evaluator', 'test_evaluator',
    'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'default_hooks', 'custom_hooks',
    'data_preprocessor', 'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor',
    'log_level', 'visualizer', 'vis_backends', 'default_scope', 'randomness', 'model_wrapper_cfg',
    'compile', 'strategy', 'cfg', 'custom_imports', 'activation_checkpointing',
    'efficient_conv_bn_eval', 'cudnn_benchmark', 'dist_cfg', 'mp_cfg', 'find_unused_parameters',
    'sync_bn', 'resource_limit', 'seed', 'deterministic', 'filename',
})
# Configs written after the reference as variants of one it holds: (that config, {dotted key:
# value}); the variant must resolve to that config's reference with these keys set.
DERIVED = {
    'fmnist_genrep_stage1_5k_nodistil.py': ('fmnist_genrep_stage1_5k.py', {
        'model.posterior': None, 'model.teacher_weights': 'unified', 'custom_hooks': []}),
}


def resolved(name: str) -> dict:
    """The config's resolved dict, less its file name, as JSON values."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'genrep', name),
                          import_custom_modules=False).to_dict()
    cfg.pop('filename', None)
    return json.loads(json.dumps(cfg, sort_keys=True, default=str))


@pytest.fixture(scope='module')
def reference():
    with open(REFERENCE) as f:
        return json.load(f)


def expected(name: str, reference: dict) -> dict:
    """The reference a config must resolve to: its own, or a DERIVED variant's."""
    if name in reference:
        return reference[name]
    source, changes = DERIVED[name]
    before = copy.deepcopy(reference[source])
    for dotted, value in changes.items():
        *parents, last = dotted.split('.')
        node = before
        for parent in parents:
            node = node[parent]
        node[last] = value
    return before


def test_reference_covers_every_config(reference):
    # no config added or lost without its reference
    assert sorted(set(reference) | set(DERIVED)) == CONFIGS
    assert not set(reference) & set(DERIVED)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_resolves_as_before_its_bases(name, reference):
    got, before = resolved(name), expected(name, reference)
    lost = sorted(set(before) - set(got))
    assert not lost, f'{name}: top-level keys lost: {lost}'
    added = sorted(set(got) - set(before))
    read = sorted(set(added) & RUNNER_KEYS)
    assert not read, (f'{name}: adds {read}, which the Runner or the tools read; helper variables '
                      f'added: {added}')
    for key in before:
        assert got[key] == before[key], (name, key)


if __name__ == '__main__':
    if sys.argv[1:] != ['--write']:
        sys.exit('usage: python tests/test_config_bases.py --write')
    with open(REFERENCE, 'w') as f:
        json.dump({name: resolved(name) for name in CONFIGS if name not in DERIVED}, f,
                  sort_keys=True, indent=1)
        f.write('\n')
    print(f'{REFERENCE}: {len(CONFIGS)} configs')

"""tools/analysis_tools/fair_comparison.py: the few-label schedules it sets are whole schedules of
each config, and the derived test configs it writes test what it says (ECE; the shifted set)."""
import os.path as osp

import pytest
from conftest import REPO_ROOT, load_tool
from mmengine.config import Config, DictAction


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/analysis_tools/fair_comparison.py')


def with_options(config: str, options: list) -> Config:
    """``config`` with ``options`` applied as ``tools/train.py --cfg-options`` applies them."""
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    if options:
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    return cfg


def test_full_labels_change_nothing(tool):
    assert all(tool.schedule(key, 60000) == [] for key in
               ('perception', 'perception_pretrained', 'stage1', 'stage2'))


@pytest.mark.parametrize('key,epochs', [('perception', 24), ('perception_pretrained', 36),
                                        ('stage2', 4)])
def test_few_labels_train_longer_on_the_subset_with_the_decay_spanning_it(tool, key, epochs):
    cfg = with_options(tool.CONFIGS[key], tool.schedule(key, 5000))
    assert cfg.train_dataloader.dataset.indices == 5000
    assert cfg.train_cfg.max_epochs == epochs == cfg.param_scheduler[1]['end']
    assert cfg.param_scheduler[1]['type'] == 'CosineAnnealingLR'
    assert cfg.train_cfg.val_begin == cfg.train_cfg.val_interval == epochs  # validated once


def test_stage1_with_few_labels_is_its_own_config(tool):
    cfg = with_options(tool.CONFIGS['stage1_5k'], tool.schedule('stage1', 5000))
    assert cfg.train_dataloader.dataset.indices == 5000
    assert cfg.train_cfg.max_epochs == cfg.param_scheduler[-1]['end'] == 10


@pytest.mark.parametrize('setting', ['perception', 'genrep'])
def test_derived_test_configs(tool, tmp_path, setting):
    config = tool.CONFIGS['stage2' if setting == 'genrep' else setting]
    paths = tool.test_configs(str(tmp_path), config, setting)
    base = Config.fromfile(osp.join(REPO_ROOT, config))
    test, shift = (Config.fromfile(paths[name]) for name in ('test', 'shift'))
    for cfg in (test, shift):
        assert [e['type'] for e in cfg.test_evaluator] == ['Accuracy',
                                                           'genrep.ExpectedCalibrationError']
        assert cfg.model == base.model and cfg.test_dataloader.dataset.split == 'test'
        # GenRep's test keeps its semantic EMA hook and leaves out the generation test
        hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
        assert hooks == (['genrep.SemanticEMAHook'] if setting == 'genrep' else [])
    assert test.test_dataloader.dataset.data_root == base.test_dataloader.dataset.data_root
    assert shift.test_dataloader.dataset.data_root == 'data/fmnist_shift'

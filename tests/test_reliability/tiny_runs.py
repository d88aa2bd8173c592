"""Runners of the tiny test configs as tools/train.py builds them, for the resume and chaos tests:
the perception job (fmnist_tiny.py: the main job's classifier with a tiny UNet, RandomFlip on)
and GenRep stage 2 (fmnist_genrep_tiny_stage2.py: the teacher's reverse chain for distillation, the
gradient alignment wrapper, the semantic EMA hook; the generation evaluation hook left out, as it
needs a feature network).

16 training images, batch 8: 2 iterations an epoch, 3 epochs, validated after each, a checkpoint
after every iteration (epoch_<n>.pth at an epoch's end, iter_<n>.pth inside), none removed.
"""
import os.path as osp

import torch
from conftest import REPO_ROOT

PERCEPTION = 'tests/data/configs/fmnist_tiny.py'
STAGE2 = 'tests/data/configs/fmnist_genrep_tiny_stage2.py'
EPOCHS = 3
ITERS_PER_EPOCH = 2
TOTAL = EPOCHS * ITERS_PER_EPOCH


def tiny_options(config, data_root):
    """--cfg-options of a tiny run of ``config`` on the Fashion-MNIST lookalike ``data_root``."""
    options = {f'{loader}.dataset.data_root': str(data_root)
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    options.update({
        'train_dataloader.batch_size': 8,
        'train_dataloader.dataset.indices': None,
        'train_cfg.max_epochs': EPOCHS,
        'train_cfg.val_begin': 1,
        'train_cfg.val_interval': 1,
        'default_hooks.checkpoint.iter_interval': 1,
        'default_hooks.checkpoint.max_keep_iter_ckpts': 100,
        'default_hooks.checkpoint.max_keep_ckpts': 100,
        'default_hooks.checkpoint.save_best': None,
    })
    if config == STAGE2:
        options['custom_hooks'] = [dict(type='genrep.SemanticEMAHook', momentum=0.9)]
    return options


def tiny_cfg(config, data_root, work_dir, resume_from=None, options=None):
    """The config tools/train.py would run (checks, resumable loops) for a tiny run; ``options``:
    more --cfg-options. ``resume_from='auto'``: as ``--resume`` (the newest readable checkpoint of
    the work dir, or a fresh start without one)."""
    from mmengine.config import Config

    from genrep.engine.config_checks import validate_config
    from genrep.engine.runner_utils import (resolve_start, use_resumable_loops,
                                            use_teacher_cost_hook)
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    cfg.merge_from_dict(dict(tiny_options(config, data_root), **(options or {})))
    # mmengine keeps one visualizer per name in a process: one name a run.
    cfg.visualizer.name = f'visualizer_{osp.abspath(work_dir)}_{resume_from}'
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    if resume_from == 'auto':
        resolve_start(cfg, 'auto', overwrite=False)
    else:
        cfg.resume = resume_from is not None
        cfg.load_from = resume_from
    validate_config(cfg, cfg.filename)
    use_resumable_loops(cfg)
    use_teacher_cost_hook(cfg)
    return cfg


def train(config, data_root, work_dir, resume_from=None, options=None):
    from mmengine.runner import Runner
    runner = Runner.from_cfg(tiny_cfg(config, data_root, work_dir, resume_from, options))
    runner.train()
    return runner


def checkpoint_after(work_dir, iteration):
    """The file that holds iteration ``iteration`` of a tiny run."""
    if iteration % ITERS_PER_EPOCH == 0:
        return osp.join(work_dir, f'epoch_{iteration // ITERS_PER_EPOCH}.pth')
    return osp.join(work_dir, f'iter_{iteration}.pth')


def final_weights(work_dir):
    checkpoint = torch.load(osp.join(work_dir, f'epoch_{EPOCHS}.pth'), map_location='cpu',
                            weights_only=True)
    assert checkpoint['meta']['iter'] == TOTAL
    return checkpoint['state_dict']


def max_abs_diff(got, expected):
    """max |dW| over the floating-point entries of two state dicts with the same keys."""
    assert got.keys() == expected.keys()
    return max(((got[k].double() - v.double()).abs().max().item() for k, v in expected.items()
                if v.is_floating_point()), default=0.0)

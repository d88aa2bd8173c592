"""Train a genrep (or any OpenMMLab) model from a config: parse, merge, build the Runner, train."""
import argparse
import os
import os.path as osp
import sys

# The tools run the genrep of their own checkout, whatever else is installed.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from genrep.engine.config_checks import validate_config
from genrep.engine.process_group import close_process_group
from genrep.engine.runner_utils import (log_rewrite, resolve_start, use_resumable_loops,
                                        use_teacher_cost_hook)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, without a path, from the newest readable '
        'checkpoint in the work dir (with none, start as the config says, from its load_from)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='train anew into a work dir that already holds checkpoints, replacing them')
    parser.add_argument(
        '--amp', action='store_true', default=False, help='enable automatic mixed precision')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value pairs, e.g. train_cfg.max_epochs=2')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_amp(cfg):
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper == 'AmpOptimWrapper':
        return
    if optim_wrapper != 'OptimWrapper':
        raise ValueError(f'--amp: optim_wrapper.type is {optim_wrapper!r}; enable mixed precision '
                         'in that wrapper\'s own config instead')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    log_rewrite('optim_wrapper.type', 'AmpOptimWrapper',
                f"--amp (loss_scale {cfg.optim_wrapper.loss_scale!r})")


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        setup_amp(cfg)

    validate_config(cfg, args.config)
    resolve_start(cfg, args.resume, args.overwrite)
    use_resumable_loops(cfg)
    use_teacher_cost_hook(cfg)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    close_process_group()


if __name__ == '__main__':
    main()

"""Evaluate a checkpoint on a config's test set."""
import argparse
import os
import os.path as osp
import sys

# The tools run the genrep of their own checkout, whatever else is installed.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from genrep.engine.checkpoints import verify_checkpoint
from genrep.engine.config_checks import validate_config
from genrep.engine.process_group import close_process_group


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value pairs, e.g. test_dataloader.batch_size=64')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    verify_checkpoint(args.checkpoint)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    validate_config(cfg, args.config)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out {args.out!r}: the output file must be a .pkl file')
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()
    close_process_group()


if __name__ == '__main__':
    main()

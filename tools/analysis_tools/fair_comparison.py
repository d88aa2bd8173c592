"""The fair comparison of issue 26: GenRep against perception-only training from the same start.

Three settings, each trained with ``randomness.seed`` = 0, 1, 2 and tested on the 10,000
Fashion-MNIST test images (top-1, ECE and the confidence gap, 15 bins) and on Fashion-MNIST-Shift
(top-1; `make ood`'s converter writes it):

    perception             `make perception`: the UNet classifier from scratch, cross-entropy alone
    perception_pretrained  the same classifier from the shipped pretrained denoiser
                           (configs/genrep/fmnist_unet_cls_pretrained.py: the VPD-style baseline)
    genrep                 GenRep stages 1 and 2 from the shipped denoiser (`make main`'s configs)

With ``--labels 5000`` each setting sees the first 5,000 training images only, at the iteration
counts of the full-label runs (perception: 24 epochs, the pretrained baseline 36, GenRep's stage 1
its 5k config's 10 epochs and stage 2 four epochs).

Every run is an ordinary ``tools/train.py`` / ``tools/test.py`` process in
``<work-dir>/<labels>/<setting>/seed<k>/``; its training wall time is recorded beside it
(``wall.json``), and a run whose tests exist is not run again, so an interrupted comparison goes on
where it stopped. The tests run from small derived configs written into the run's folder (the
stage's config, plus the ECE evaluator or the shifted test set, without the generation test).

    python tools/analysis_tools/fair_comparison.py [--settings ...] [--seeds 0 1 2]
        [--labels 60000] [--work-dir work_dirs/fair_comparison]
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from ablation import ROOT, run, test_scores  # noqa: E402

CONFIGS = dict(
    perception='configs/genrep/fmnist_unet_cls.py',
    perception_pretrained='configs/genrep/fmnist_unet_cls_pretrained.py',
    stage1='configs/genrep/fmnist_genrep_stage1.py',
    stage1_5k='configs/genrep/fmnist_genrep_stage1_5k.py',
    stage2='configs/genrep/fmnist_genrep_stage2.py')
SETTINGS = ('perception', 'perception_pretrained', 'genrep')
SHIFT_ROOT = 'data/fmnist_shift'
EVALUATOR = ("[dict(type='Accuracy', topk=(1, )), "
             "dict(type='genrep.ExpectedCalibrationError', n_bins=15)]")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='GenRep against perception-only, same start')
    parser.add_argument('--settings', nargs='+', default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--labels', type=int, default=60000, choices=(60000, 5000),
                        help='labelled training images')
    parser.add_argument('--work-dir', default='work_dirs/fair_comparison')
    parser.add_argument('--out', help='markdown table (default: <work-dir>/<labels>/results.md)')
    return parser.parse_args(argv)


def schedule(config_key: str, labels: int) -> list:
    """``--cfg-options`` of a training run at ``labels`` labelled images."""
    if labels == 60000:
        return []
    epochs = dict(perception=24, perception_pretrained=36, stage2=4).get(config_key)
    options = [f'train_dataloader.dataset.indices={labels}']
    if epochs:  # the cosine decay (param_scheduler.1) spans the longer schedule; validated once
        options += [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_begin={epochs}',
                    f'train_cfg.val_interval={epochs}', f'param_scheduler.1.end={epochs}']
    return options


def derived_config(folder: str, base: str, name: str, body: str) -> str:
    """Writes ``<folder>/<name>.py``: ``base`` (a repository config) plus ``body``."""
    path = osp.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = ['{osp.join(ROOT, base)}']\n{body}")
    return path


def test_configs(folder: str, config: str, setting: str) -> dict:
    """Writes the run's two test configs into ``folder``: ``config`` with the classification
    evaluators (top-1, ECE) and no generation test, on the test set ('test') and on the shifted
    set ('shift'); returns their paths by name."""
    body = f'test_evaluator = {EVALUATOR}\n'
    if setting == 'genrep':
        body += "custom_hooks = [dict(type='genrep.SemanticEMAHook', momentum=0.999)]\n"
    shift = f"test_dataloader = dict(dataset=dict(data_root='{SHIFT_ROOT}'))\n"
    return dict(test=derived_config(folder, config, 'test_config', body),
                shift=derived_config(folder, config, 'shift_config', body + shift))


def train(config: str, work_dir: str, options: list) -> float:
    """Trains (resuming ``work_dir``) and returns the wall seconds of this call."""
    start = time.time()
    run('train.py', config, '--work-dir', work_dir, '--resume',
        *(['--cfg-options', *options] if options else []))
    return time.time() - start


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return osp.join(work_dir, osp.basename(f.read().strip()))


def run_setting(setting: str, seed: int, labels: int, root: str) -> dict:
    """Trains and tests one setting at one seed (what exists is kept); returns its figures."""
    folder = osp.join(root, str(labels), setting, f'seed{seed}')
    os.makedirs(folder, exist_ok=True)
    wall_file = osp.join(folder, 'wall.json')
    wall = json.load(open(wall_file)) if osp.exists(wall_file) else {}
    seed_option = [f'randomness.seed={seed}']
    if setting == 'genrep':
        stage1 = CONFIGS['stage1_5k' if labels == 5000 else 'stage1']
        stages = [('stage1', stage1, schedule('stage1', labels)),
                  ('stage2', CONFIGS['stage2'], schedule('stage2', labels))]
    else:
        stages = [(setting, CONFIGS[setting], schedule(setting, labels))]
    checkpoint = None
    for name, config, options in stages:
        work_dir = osp.join(folder, name)
        if name == 'stage2':
            options = options + [f'load_from={checkpoint}']
        if name not in wall:
            wall[name] = train(config, work_dir, options + seed_option)
            with open(wall_file, 'w') as f:
                json.dump(wall, f)
        checkpoint = last_checkpoint(work_dir)
    scores = {}
    for name, test_config in test_configs(folder, stages[-1][1], setting).items():
        test_dir = osp.join(folder, name)
        if test_scores(test_dir) is None:
            run('test.py', test_config, checkpoint, '--work-dir', test_dir)
        scores[name] = test_scores(test_dir)
    return dict(
        top1=scores['test']['accuracy/top1'],
        ece=scores['test']['calibration/ece'],
        gap=100 * scores['test']['calibration/confidence_gap'],
        shift_top1=scores['shift']['accuracy/top1'],
        minutes=sum(wall.values()) / 60)


def mean_std(values: list) -> str:
    if len(values) < 2:
        return f'{values[0]:.4g}' if values else '-'
    return f'{statistics.mean(values):.4g} +- {statistics.stdev(values):.2g}'


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(osp.join(ROOT, SHIFT_ROOT)):
        raise SystemExit(f'fair_comparison: {SHIFT_ROOT} not found; write it with '
                         f'python tools/dataset_converters/make_fmnist_shift.py --out '
                         f'{SHIFT_ROOT} --seed 0 (make ood does)')
    rows = []
    for setting in args.settings:
        results = [run_setting(setting, seed, args.labels, args.work_dir) for seed in args.seeds]
        cells = [' / '.join(f'{r[key]:.4g}' for r in results)
                 + f' ({mean_std([r[key] for r in results])})'
                 for key in ('top1', 'ece', 'gap', 'shift_top1', 'minutes')]
        rows.append(f'| {setting} | ' + ' | '.join(cells) + ' |')
        print(rows[-1], flush=True)
    seeds = ' / '.join(str(s) for s in args.seeds)
    table = (f'{args.labels} labelled images; seeds {seeds}, then mean +- std\n\n'
             '| setting | top-1 | ECE | confidence gap (points) | Fashion-MNIST-Shift top-1 | '
             'training wall time (min) |\n|---|---|---|---|---|---|\n' + '\n'.join(rows) + '\n')
    out = args.out or osp.join(args.work_dir, str(args.labels), 'results.md')
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        f.write(table)
    print(table)


if __name__ == '__main__':
    main()

"""The component analysis of the paper's Table 8 on the embedded data.

Each row switches GenRep's three components on or off:

    row  generative distillation   semantic-driven generation   gradient alignment
     1
     2            x
     3                                        x
     4            x                           x
     5            x                           x                            x

and trains stage 1 (perception, with L_gen_distil when the row has it) and stage 2 (joint) from the
same pretrained denoiser, then tests stage 2: top-1, ECE, FID (and IS, CAS) per row. Off means:
distillation ``model.posterior=None``; semantic-driven generation ``model.semantic_noise=None`` and
``model.rep_align=None`` (plain diffusion loss); gradient alignment ``damping_power=0`` (alpha = 1,
the step is w_p grad_p + w_g grad_g: the same task weights, no projection damping). Rows share
their stage-1 run when they have the same distillation setting; both stage-1 checkpoints are
tested too, which gives the ECE with and without L_gen_distil.

    python tools/analysis_tools/ablation.py [--rows 1 2 3 4 5] [--stage1-iters 125]
        [--stage2-iters 40] [--samples-per-class 30] [--work-dir work_dirs/ablation]

The defaults are a CPU budget (about 20 minutes on 2 cores), shorter than the main job's stages,
so the rows compare with each other, not with ``make main``. Every run is an ordinary
``tools/train.py`` / ``tools/test.py`` process whose work dir stays under ``--work-dir``; a row
whose test result exists is not run again (``--force`` reruns).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from glob import glob

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# (distillation, semantic-driven generation, gradient alignment), Table 8's rows in order.
ROWS = {
    1: (False, False, False),
    2: (True, False, False),
    3: (False, True, False),
    4: (True, True, False),
    5: (True, True, True),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Table 8 of GenRep on the embedded data')
    parser.add_argument('--rows', type=int, nargs='+', default=sorted(ROWS), choices=sorted(ROWS))
    parser.add_argument('--stage0', default=None,
                        help='a generative pretraining checkpoint every row starts from (default: '
                        'the shipped pretrained denoiser that the stage-1 config reads)')
    parser.add_argument('--stage1-iters', type=int, default=125)
    parser.add_argument('--stage2-iters', type=int, default=40)
    parser.add_argument('--samples-per-class', type=int, default=30,
                        help='generated samples per class for FID/IS/CAS')
    parser.add_argument('--sample-steps', type=int, default=25, help='respaced sampling steps')
    parser.add_argument('--work-dir', default='work_dirs/ablation')
    parser.add_argument('--force', action='store_true', help='rerun rows that have results')
    parser.add_argument('--stage1-config', default='configs/genrep/fmnist_genrep_stage1.py')
    parser.add_argument('--stage2-config', default='configs/genrep/fmnist_genrep_stage2.py')
    parser.add_argument('--batch-size', type=int, default=128,
                        help='the training batch size of the configs (turns iterations to images)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value settings passed to every training and test run')
    parser.add_argument('--stage2-cfg-options', nargs='+', default=[],
                        help='key=value settings passed to the stage-2 runs only')
    return parser.parse_args(argv)


def run(tool, *args):
    """Runs tools/<tool> in its own process; a failure stops the ablation with its last lines."""
    command = [sys.executable, osp.join(ROOT, 'tools', tool), *args]
    print('$ ' + ' '.join(command), flush=True)
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = '\n'.join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise SystemExit(f'ablation: {tool} {args[0]} failed (exit {proc.returncode}):\n{tail}')


def test_scores(work_dir):
    """The metrics tools/test.py wrote (the newest run's JSON in ``work_dir``), or None."""
    files = sorted(glob(osp.join(work_dir, '*', '*.json')))
    if not files:
        return None
    with open(files[-1]) as f:
        return json.load(f)


def budget(args, iters):
    """One epoch over the first ``iters`` batches of the training split, no validation (each run
    is tested afterwards)."""
    return [f'train_dataloader.dataset.indices={iters * args.batch_size}',
            'train_cfg.val_interval=1000']


def cfg_options(options):
    """``--cfg-options`` followed by ``options``, or nothing when there are none."""
    return ['--cfg-options', *options] if options else []


def stage1(args, distil):
    work_dir = osp.join(args.work_dir, 'stage1_' + ('distil' if distil else 'plain'))
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    test_dir = osp.join(work_dir, 'test')
    if args.force or test_scores(test_dir) is None:
        options = [*([f'load_from={args.stage0}'] if args.stage0 else []),
                   *budget(args, args.stage1_iters), *args.cfg_options]
        if not distil:
            options += ['model.posterior=None', 'model.teacher_weights=unified',
                        'custom_hooks=[]']
        run('train.py', args.stage1_config, '--work-dir', work_dir, '--overwrite', '--cfg-options',
            *options)
        run('test.py', args.stage1_config, checkpoint, '--work-dir', test_dir,
            *cfg_options(args.cfg_options))
    return checkpoint, test_scores(test_dir)


def stage2(args, row, stage1_checkpoint):
    distil, semantic, align = ROWS[row]
    work_dir = osp.join(args.work_dir, f'row{row}')
    test_dir = osp.join(work_dir, 'test')
    if args.force or test_scores(test_dir) is None:
        model = []
        if not distil:
            model += ['model.posterior=None', 'model.teacher_weights=unified']
        if not semantic:
            model += ['model.semantic_noise=None', 'model.rep_align=None']
        if not align:
            model.append('optim_wrapper.damping_power=0')
        hook = [f'custom_hooks.1.samples_per_class={args.samples_per_class}',
                f'custom_hooks.1.num_steps={args.sample_steps}']
        run('train.py', args.stage2_config, '--work-dir', work_dir, '--overwrite', '--cfg-options',
            f'load_from={stage1_checkpoint}', *budget(args, args.stage2_iters), *model,
            *args.cfg_options, *args.stage2_cfg_options)
        run('test.py', args.stage2_config, osp.join(work_dir, 'epoch_1.pth'), '--work-dir',
            test_dir, '--cfg-options', *model, *hook, *args.cfg_options, *args.stage2_cfg_options)
    return test_scores(test_dir)


def mark(flag):
    return 'x' if flag else '-'


def main():
    args = parse_args()
    if not osp.isfile(args.stage0):
        raise SystemExit(f'ablation: stage-0 checkpoint {args.stage0!r} does not exist; run '
                         '`make main` (or tools/train.py on the stage-0 config) first')
    os.makedirs(args.work_dir, exist_ok=True)
    stage1_runs = {distil: stage1(args, distil) for distil in sorted({ROWS[r][0] for r in args.rows})}
    results = {row: stage2(args, row, stage1_runs[ROWS[row][0]][0]) for row in args.rows}

    lines = [f'GenRep component analysis (Table 8) on Fashion-MNIST: stage 1 {args.stage1_iters} '
             f'iterations, stage 2 {args.stage2_iters}, FID/IS/CAS of {args.samples_per_class} '
             f'samples per class ({args.sample_steps} steps) in the feature net\'s space',
             '',
             'stage 1 (perception)     top-1    ECE']
    for distil, (_, scores) in stage1_runs.items():
        name = 'CE + L_gen_distil' if distil else 'CE alone'
        lines.append(f'{name:22s} {scores["accuracy/top1"]:7.2f} {scores["calibration/ece"]:7.4f}')
    lines += ['', 'row  distil  semantic  align    top-1    ECE      FID     IS    CAS']
    for row, scores in results.items():
        distil, semantic, align = ROWS[row]
        lines.append(f'{row:3d}  {mark(distil):^6}  {mark(semantic):^8}  {mark(align):^5}  '
                     f'{scores["accuracy/top1"]:7.2f} {scores["calibration/ece"]:7.4f} '
                     f'{scores["generation/fid"]:8.2f} {scores["generation/is"]:6.3f} '
                     f'{scores["generation/cas"]:6.3f}')
    report = '\n'.join(lines)
    print(report)
    with open(osp.join(args.work_dir, 'table8.txt'), 'w') as f:
        f.write(report + '\n')
    with open(osp.join(args.work_dir, 'table8.json'), 'w') as f:
        json.dump(dict(stage1={str(k): v[1] for k, v in stage1_runs.items()},
                       rows={str(k): v for k, v in results.items()},
                       settings=vars(args)), f, indent=1)


if __name__ == '__main__':
    main()

"""Re-run the embedded jobs and write one results table, the regression check of a release.

    python tools/benchmark_suite.py [--jobs benchmarks/suite_jobs.py] [--only main seg] [--force]
        [--tolerance 2.0] [--reference benchmarks/suite_reference.json]
        [--out-dir work_dirs/suite] [--metafile-root .] [--update-reference]

For each job of the table (``--jobs``: a config file holding ``jobs = dict(name=dict(...))``, see
benchmarks/suite_jobs.py) in order: skip it when its result JSON is newer than its config and the
config's ``_base_`` files (unless ``--force``), else run its make target or commands (output to
``<out-dir>/logs/<job>.log``), timing it; read its metrics from the result JSON; compare them with
the stored figures (``--reference``, the ``jobs`` of an earlier results.json) and flag a drop
beyond ``--tolerance`` percent of the stored value (a rise, for metrics where lower is better).

Writes ``<out-dir>/results.md`` and ``results.json`` (metrics, wall time, change, status per job;
runs of part of the table, ``--only``, accumulate: the rows of jobs not in this run are kept),
an OpenMMLab ``metafile.yaml`` per config family (``configs/genrep/metafiles/<family>/``) and
``model-index.yml`` importing them, under ``--metafile-root``: each model names its config, task,
dataset, metrics, run time, log, weights and the environment (mmengine's ``collect_env``). Exits 1
when a job failed or regressed.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import yaml
from mmengine.config import Config

PAPER = 'Reconciling Visual Perception and Generation in Diffusion Models'
METAFILE_DIR = osp.join('configs', 'genrep', 'metafiles')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run the benchmark suite, write its results')
    parser.add_argument('--jobs', default='benchmarks/suite_jobs.py', help='the job table')
    parser.add_argument('--only', nargs='+', help='run these jobs only (table order kept)')
    parser.add_argument('--force', action='store_true',
                        help='re-run jobs whose results are current')
    parser.add_argument('--tolerance', type=float, default=2.0,
                        help='flag a drop of more than this percent of the stored value')
    parser.add_argument('--reference', default='benchmarks/suite_reference.json',
                        help='the stored figures (a results.json); absent: no comparison')
    parser.add_argument('--out-dir', default='work_dirs/suite')
    parser.add_argument('--metafile-root', default='.',
                        help='where configs/genrep/metafiles/ and model-index.yml are written')
    parser.add_argument('--update-reference', action='store_true',
                        help='store this run\'s figures as the reference afterwards')
    return parser.parse_args(argv)


def load_jobs(path: str, only: Optional[List[str]] = None) -> Dict[str, dict]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'--jobs {path!r} does not exist')
    jobs = Config.fromfile(path).get('jobs')
    if not isinstance(jobs, dict) or not jobs:
        raise ValueError(f'{path}: no `jobs = dict(name=dict(...))` table')
    jobs = {name: dict(job) for name, job in jobs.items()}
    for name, job in jobs.items():
        missing = [key for key in ('family', 'task', 'dataset', 'config', 'results', 'metrics')
                   if key not in job]
        if ('make' in job) == ('commands' in job):
            missing.append('make or commands (one of them)')
        if missing:
            raise ValueError(f'{path}: jobs.{name} lacks {", ".join(missing)}')
    if only:
        unknown = sorted(set(only) - set(jobs))
        if unknown:
            raise ValueError(f'--only {unknown[0]!r}: not a job of {path} ({", ".join(jobs)})')
        jobs = {name: job for name, job in jobs.items() if name in only}
    return jobs


def config_sources(config: str) -> List[str]:
    """The config file and, recursively, its local ``_base_`` files (``pkg::`` bases excluded:
    they change with the installed package, not with this checkout)."""
    found, todo = [], [osp.abspath(config)]
    while todo:
        path = todo.pop()
        if path in found or not osp.isfile(path):
            continue
        found.append(path)
        for base in Config._get_base_files(path):
            if '::' not in base:
                todo.append(osp.normpath(osp.join(osp.dirname(path), base)))
    return found


def newest(pattern: Optional[str]) -> Optional[str]:
    matches = glob.glob(pattern) if pattern else []
    return max(matches, key=osp.getmtime) if matches else None


def is_current(job: dict) -> bool:
    """The result exists and is newer than the config and its bases."""
    result = newest(job['results'])
    sources = config_sources(job['config'])
    return result is not None and bool(sources) and osp.getmtime(result) >= max(
        osp.getmtime(s) for s in sources)


def job_commands(job: dict) -> List[str]:
    return [f'make {job["make"]}'] if 'make' in job else list(job['commands'])


def run_job(job: dict, log_path: str) -> int:
    """Runs the job's commands in order, output to ``log_path``; the first failure stops it."""
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    with open(log_path, 'w') as log:
        for command in job_commands(job):
            log.write(f'$ {command}\n')
            log.flush()
            code = subprocess.call(command, shell=True, stdout=log, stderr=subprocess.STDOUT)
            if code:
                return code
    return 0


def record_path(out_dir: str, name: str) -> str:
    """Where a job's last run is recorded (wall time, status), beside its log."""
    return osp.join(out_dir, 'logs', f'{name}.json')


def read_record(out_dir: str, name: str) -> dict:
    path = record_path(out_dir, name)
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def successful(entry: dict) -> dict:
    """A job's record or results row, unless it is of a failed run: that is not what a current
    result cost (a runner stopped on the way, whose job another run then finished)."""
    return {} if entry.get('status', '').startswith('FAILED') else entry


def write_record(out_dir: str, name: str, wall: Optional[float], status: str) -> None:
    """The run's wall time and status, so that a later run that finds the job current still
    reports what running it cost."""
    os.makedirs(osp.join(out_dir, 'logs'), exist_ok=True)
    with open(record_path(out_dir, name), 'w') as f:
        json.dump(dict(job=name, wall_time_s=wall, status=status,
                       finished=time.strftime('%Y-%m-%d %H:%M:%S')), f, indent=1)


def read_metrics(job: dict) -> Dict[str, Optional[float]]:
    result = newest(job['results'])
    if result is None:
        return {}
    with open(result) as f:
        values = json.load(f)
    return {key: (float(values[key]) if isinstance(values.get(key), (int, float)) else None)
            for key in job['metrics']}


def regressions(job: dict, metrics: dict, stored: dict, tolerance: float) -> Dict[str, dict]:
    """Per metric with a stored figure: the change and whether it is a drop beyond
    ``tolerance`` percent of the stored value (a rise where lower is better)."""
    lower = set(job.get('lower_is_better', ()))
    out = {}
    for key, value in metrics.items():
        before = stored.get(key)
        if value is None or before is None:
            continue
        change = value - before
        worse = change > 0 if key in lower else change < 0
        out[key] = dict(change=change,
                        regressed=worse and abs(change) > tolerance / 100 * abs(before))
    return out


def format_value(value) -> str:
    if value is None:
        return '-'
    return f'{value:.4g}' if abs(value) < 1 else f'{value:.2f}'


def accumulated_rows(rows: List[dict], table: Dict[str, dict], out_dir: str) -> List[dict]:
    """This run's rows and, for the other jobs of the table, the rows results.json holds now
    (another run of part of the table may have written it meanwhile), in table order."""
    kept = {}
    path = osp.join(out_dir, 'results.json')
    if osp.isfile(path):
        with open(path) as f:
            kept = json.load(f).get('jobs', {})
    kept.update({row['job']: row for row in rows})
    return [kept[name] for name in table if name in kept]


def write_table(rows: List[dict], jobs: Dict[str, dict], tolerance: float, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(dict(tolerance_percent=tolerance, jobs={r['job']: r for r in rows}), f,
                  indent=1)
    lines = ['| job | config | metrics | change vs stored | wall time | status |',
             '|---|---|---|---|---|---|']
    for row in rows:
        names = jobs[row['job']]['metrics']
        shown = ', '.join(f'{names[k]} {format_value(v)}' for k, v in row['metrics'].items())
        changes = ', '.join(
            f'{names[k]} {c["change"]:+.4g}' + (' **REGRESSION**' if c['regressed'] else '')
            for k, c in row['changes'].items()) or '-'
        seconds = row.get('wall_time_s')
        wall = ('-' if seconds is None else
                f'{seconds:.0f} s' if seconds < 60 else f'{seconds / 60:.1f} min')
        lines.append(f'| {row["job"]} | `{row["config"]}` | {shown or "-"} | {changes} | '
                     f'{wall} | {row["status"]} |')
    lines.append('')
    lines.append(f'A drop of more than {tolerance}% of the stored value (a rise, for '
                 'ECE, FID and depth errors) is flagged as a regression.')
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def environment() -> Dict[str, str]:
    """mmengine's ``collect_env`` (less the build flags) and the versions of the toolkits."""
    from importlib.metadata import PackageNotFoundError, version

    from mmengine.utils.dl_utils import collect_env
    env = {key: str(value) for key, value in collect_env().items()
           if key not in ('PyTorch compiling details', 'numpy_random_seed')}
    for package in ('mmpretrain', 'mmsegmentation', 'mmdet', 'mmcv', 'diffusers', 'genrep'):
        try:
            env[package] = version(package)
        except PackageNotFoundError:
            env[package] = 'not installed'
    return env


def write_metafiles(rows: List[dict], jobs: Dict[str, dict], root: str) -> List[str]:
    """One metafile.yaml per family of ``rows`` and model-index.yml importing every family's;
    returns their paths. A family's file lists the jobs of the table (``jobs``: all of it) in
    that family; those without a row here keep the entry the file already had."""
    env = environment()
    by_job = {row['job']: row for row in rows}
    families: Dict[str, List[str]] = {}
    for name, job in jobs.items():
        families.setdefault(job['family'], []).append(name)
    written = {jobs[name]['family'] for name in by_job}
    families = {family: names for family, names in families.items() if family in written}
    paths = []
    for family, names in families.items():
        path = osp.join(root, METAFILE_DIR, family, 'metafile.yaml')
        old = {}
        if osp.isfile(path):
            with open(path) as f:
                old = {m['Name']: m for m in (yaml.safe_load(f) or {}).get('Models', [])}
        models = []
        for name in names:
            row = by_job.get(name)
            if row is None:
                if name in old:
                    models.append(old[name])
                continue
            models.append(model_entry(name, jobs[name], row, family, env))
        document = dict(
            Collections=[dict(Name=family, Paper=dict(Title=PAPER),
                              Metadata={'Training Data': sorted({jobs[n]['dataset']
                                                                 for n in names})})],
            Models=models)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('# Written by tools/benchmark_suite.py; do not edit by hand.\n')
            yaml.safe_dump(document, f, sort_keys=False)
        paths.append(path)
    index = osp.join(root, 'model-index.yml')
    imports = sorted(glob.glob(osp.join(root, METAFILE_DIR, '*', 'metafile.yaml')))
    with open(index, 'w') as f:
        f.write('# Written by tools/benchmark_suite.py; do not edit by hand.\n')
        yaml.safe_dump(dict(Import=[osp.relpath(p, root) for p in imports]), f, sort_keys=False)
    return paths + [index]


def model_entry(name: str, job: dict, row: dict, family: str, env: Dict[str, str]) -> dict:
    metadata = {'Training Data': job['dataset']}
    if row.get('wall_time_s') is not None:
        metadata['Run Time (s)'] = round(row['wall_time_s'], 1)
    log = newest(job.get('log'))
    if log:
        metadata['Log'] = log
    metadata['Environment'] = env
    entry = {'Name': name, 'In Collection': family, 'Config': job['config'],
             'Metadata': metadata}
    metrics = {job['metrics'][k]: round(v, 4) for k, v in row['metrics'].items()
               if v is not None}
    if metrics:
        entry['Results'] = [dict(Task=job['task'], Dataset=job['dataset'], Metrics=metrics)]
    weights = newest(job.get('weights'))
    if weights:
        entry['Weights'] = weights
    return entry


def main(argv=None) -> int:
    args = parse_args(argv)
    table = load_jobs(args.jobs)
    jobs = load_jobs(args.jobs, args.only)
    stored = {}
    if args.reference and osp.isfile(args.reference):
        with open(args.reference) as f:
            stored = json.load(f).get('jobs', {})
    previous = {}
    if osp.isfile(osp.join(args.out_dir, 'results.json')):
        with open(osp.join(args.out_dir, 'results.json')) as f:
            previous = json.load(f).get('jobs', {})

    rows, start = [], time.perf_counter()
    # One command that writes several jobs' results (a GenRep chain's stages, one make target)
    # runs once a suite run, and its wall time is the first of those jobs' in the table.
    first_of = {}
    for name, job in table.items():
        first_of.setdefault(tuple(job_commands(job)), name)
    ran = set()  # the commands run in this run
    for index, (name, job) in enumerate(jobs.items(), 1):
        prefix = f'[{index}/{len(jobs)}] {name}'
        wall = None
        commands = tuple(job_commands(job))
        owner = first_of[commands]
        made_by = f"current (made by {owner}'s command)"
        if commands in ran:
            status = made_by
            write_record(args.out_dir, name, None, status)
            print(f'{prefix}: result current, made by {owner}\'s command', flush=True)
        elif not args.force and is_current(job):
            status = 'current (not re-run)'
            if owner != name:  # its wall time is the earlier job's, whose command made it
                status = made_by
            else:
                # What the run that wrote the result cost: its record, else the last results.json.
                wall = successful(read_record(args.out_dir, name)).get('wall_time_s')
                if wall is None:
                    row = successful(previous.get(name, {}))
                    wall = row.get('wall_time_s')
                    if wall is not None:
                        write_record(args.out_dir, name, wall, row.get('status', 'ran'))
            print(f'{prefix}: result current, skipped ({newest(job["results"])})', flush=True)
        else:
            print(f'{prefix}: running {" && ".join(job_commands(job))} ...', flush=True)
            began = time.perf_counter()
            code = run_job(job, osp.join(args.out_dir, 'logs', f'{name}.log'))
            wall = time.perf_counter() - began
            status = 'ran' if code == 0 else f'FAILED (exit {code}, see logs/{name}.log)'
            ran.add(commands)
            write_record(args.out_dir, name, wall, status)
            print(f'{prefix}: {status} in {wall / 60:.1f} min '
                  f'(suite {(time.perf_counter() - start) / 60:.1f} min)', flush=True)
        metrics = read_metrics(job)
        changes = regressions(job, metrics, stored.get(name, {}).get('metrics', {}),
                              args.tolerance)
        if not metrics and not status.startswith('FAILED'):
            status = 'FAILED (no result file)'
        if any(c['regressed'] for c in changes.values()):
            status += ', REGRESSION'
        rows.append(dict(job=name, config=job['config'], metrics=metrics, changes=changes,
                         wall_time_s=wall, status=status))
        shown = ', '.join(f'{job["metrics"][k]} {format_value(v)}' for k, v in metrics.items())
        print(f'{prefix}: {shown or "no metrics"}', flush=True)

    write_table(accumulated_rows(rows, table, args.out_dir), table, args.tolerance, args.out_dir)
    written = write_metafiles(rows, table, args.metafile_root)
    if args.update_reference:
        os.makedirs(osp.dirname(osp.abspath(args.reference)), exist_ok=True)
        with open(args.reference, 'w') as f:
            json.dump(dict(jobs={r['job']: r for r in rows}), f, indent=1)
    bad = [r['job'] for r in rows if 'FAILED' in r['status'] or 'REGRESSION' in r['status']]
    print(f'{len(rows)} jobs in {(time.perf_counter() - start) / 60:.1f} min -> '
          f'{osp.join(args.out_dir, "results.md")}, {len(written)} metafiles'
          + (f'; failed or regressed: {", ".join(bad)}' if bad else ''))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

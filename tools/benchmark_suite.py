"""Re-run the embedded jobs and write one results table, the regression check of a release.

    python tools/benchmark_suite.py [--jobs benchmarks/suite_jobs.py] [--only main seg] [--force]
        [--tolerance 2.0] [--reference benchmarks/suite_reference.json]
        [--out-dir work_dirs/suite] [--metafile-root .] [--update-reference]

For each job of the table (``--jobs``: a config file holding ``jobs = dict(name=dict(...))``, see
benchmarks/suite_jobs.py) in order: skip it when its result is current (unless ``--force``), else
run its make target or commands (output to ``<out-dir>/logs/<job>.log``), timing it; read its metrics from the result JSON; compare them with
the stored figures (``--reference``, the ``jobs`` of an earlier results.json) and flag a drop
beyond ``--tolerance`` percent of the stored value (a rise, for metrics where lower is better).

A job's ``pictures`` (``{name: glob}``) are copied, after it ran, to ``<pictures-dir>/<name>.png``
(default docs/_static/results, the pictures the README and the docs show): from the newest run
the glob matches, its first file in sorted order, scaled down until the PNG is under
``PICTURE_BYTES``; a picture narrower than ``PICTURE_MIN_SIDE`` (a 28-pixel sample) is enlarged
with nearest-neighbour pixels so that it can be read.

Writes ``<out-dir>/results.md`` and ``results.json`` (metrics, wall time, change, status per job;
runs of part of the table, ``--only``, accumulate: the rows of jobs not in this run are kept),
an OpenMMLab ``metafile.yaml`` per config family (``configs/genrep/metafiles/<family>/``) and
``model-index.yml`` importing them, under ``--metafile-root``: each model names its config, task,
dataset, metrics, run time, log, weights and the environment (mmengine's ``collect_env``). Exits 1
when a job failed or regressed.

Current: the suite made the result file as it is now (its record, ``<out-dir>/logs/<job>.json``,
holds the file's digest) under the same currency key: the config and its ``_base_`` chain, the
code (``CODE_DIRS``: the genrep package and the tools, this file excepted) and the installed
versions of the stack (``STACK``). A change to any of them re-runs the job, and the log says which
part changed; a result written by hand, outside the suite, is not current.
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Dict, List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import genrep  # noqa: F401  (applies genrep.compat before any OpenMMLab import)
import yaml
from mmengine.config import Config

PAPER = 'Reconciling Visual Perception and Generation in Diffusion Models'
METAFILE_DIR = osp.join('configs', 'genrep', 'metafiles')
# What determines a result besides its config: the code a job runs and the installed stack.
CODE_DIRS = [osp.join(REPO_ROOT, 'genrep'), osp.join(REPO_ROOT, 'tools')]
PICTURE_BYTES = 200_000  # each committed picture stays under this size
PICTURE_MAX_SIDE = 1024
PICTURE_MIN_SIDE = 512  # a 128-px scene drawn 4x: its labels readable
# The README's picture: these jobs' pictures side by side, at one height (those that exist).
OVERVIEW = ('main_samples', 'seg_overlay', 'ovdet_boxes', 'depth_map')
OVERVIEW_HEIGHT = 256
STACK = ('torch', 'torchvision', 'numpy', 'mmengine', 'mmcv', 'mmpretrain', 'mmsegmentation',
         'mmdet', 'diffusers', 'transformers')


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
    parser.add_argument('--pictures-dir', default=osp.join('docs', '_static', 'results'),
                        help="where the jobs' pictures are written (their `pictures` entries)")
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
        pictures = job.get('pictures', {})
        if not isinstance(pictures, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in pictures.items()):
            raise ValueError(f'{path}: jobs.{name}.pictures must map names to globs')
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


def file_digest(paths: List[str], root: Optional[str] = None) -> str:
    """sha256 over the files' names (relative to ``root``) and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(osp.relpath(path, root or '/').encode() + b'\0')
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def code_digest(dirs: Optional[List[str]] = None) -> str:
    """The digest of the code files under ``dirs`` (default ``CODE_DIRS``), compiled caches and
    this suite itself excepted (changing how results are tabled re-runs nothing)."""
    this = osp.abspath(__file__)
    paths = []
    for top in dirs or CODE_DIRS:
        for folder, subdirs, files in os.walk(top):
            subdirs[:] = [d for d in subdirs if d != '__pycache__']
            paths += [osp.join(folder, f) for f in files
                      if not f.endswith('.pyc') and osp.abspath(osp.join(folder, f)) != this]
    return file_digest(paths, REPO_ROOT)


def installed_versions() -> Dict[str, str]:
    """Python's and the installed ``STACK`` packages' versions ('absent' where not installed)."""
    versions = {'python': sys.version.split()[0]}
    for name in STACK:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = 'absent'
    return versions


def currency_key(job: dict) -> Dict[str, object]:
    """What a result depends on besides its data: the config with its ``_base_`` chain, the code
    and the installed versions. A missing config is an error naming the job's ``config``."""
    sources = config_sources(job['config'])
    if not sources:
        raise FileNotFoundError(f"config {job['config']!r} of the job table does not exist")
    return dict(config=file_digest(sources), code=code_digest(), versions=installed_versions())


def key_changes(old: dict, new: dict) -> List[str]:
    """What differs between two currency keys, in words (empty: the same key)."""
    if not old:
        return ['no record of a suite run that made it']
    changed = [part for part in ('config', 'code') if old.get(part) != new[part]]
    before = old.get('versions') or {}
    changed += [f'{name} {before.get(name)} -> {value}'
                for name, value in new['versions'].items() if before.get(name) != value]
    return changed


def result_digest(job: dict) -> Optional[str]:
    """The digest of the job's newest result file, ``None`` where there is none."""
    result = newest(job['results'])
    return file_digest([result]) if result else None


def stale_reasons(job: dict, record: dict, key: dict) -> List[str]:
    """Why the job's result is not current (empty: it is): no result, a result the suite did not
    make as it is (a failed run, a file changed since), or a changed currency key."""
    result = result_digest(job)
    if result is None:
        return ['no result file']
    record = successful(record)
    if record.get('result') != result:
        return ['the result file is not the one the suite made']
    return key_changes(record.get('key') or {}, key)


def is_current(job: dict, record: dict, key: dict) -> bool:
    return not stale_reasons(job, record, key)


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


def picture_source(pattern: str) -> Optional[str]:
    """The file a job's picture is taken from: of the files ``pattern`` matches, those in the
    folder of the newest one (the latest run), the first in sorted order; ``None`` if none."""
    latest = newest(pattern)
    if latest is None:
        return None
    folder = osp.dirname(latest)
    return sorted(p for p in glob.glob(pattern) if osp.dirname(p) == folder)[0]


def save_picture(source, dest: str, max_bytes: int = PICTURE_BYTES) -> tuple:
    """Writes ``source`` (a file, or a PIL image) as the PNG ``dest``: enlarged (nearest neighbour) to at least
    ``PICTURE_MIN_SIDE`` pixels on its longer side, at most ``PICTURE_MAX_SIDE``, then scaled down
    by steps until the file is under ``max_bytes``. Returns the written size (width, height)."""
    from PIL import Image
    image = Image.open(source) if isinstance(source, str) else source
    image = image.convert('RGBA' if 'A' in image.getbands() else 'RGB')
    side = max(image.size)
    if side < PICTURE_MIN_SIDE:
        factor = -(-PICTURE_MIN_SIDE // side)  # a whole factor keeps the pixels square
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    elif side > PICTURE_MAX_SIDE:
        scale = PICTURE_MAX_SIDE / side
        image = image.resize((round(image.width * scale), round(image.height * scale)),
                             Image.LANCZOS)
    os.makedirs(osp.dirname(osp.abspath(dest)), exist_ok=True)
    while True:
        image.save(dest, optimize=True)
        if osp.getsize(dest) < max_bytes or max(image.size) <= 64:
            return image.size
        image = image.resize((round(image.width * 0.8), round(image.height * 0.8)),
                             Image.LANCZOS)


def save_pictures(job: dict, pictures_dir: str) -> List[str]:
    """The job's ``pictures`` written under ``pictures_dir``; returns what was written and,
    for a picture whose glob matches nothing, a line saying so."""
    lines = []
    for name, pattern in (job.get('pictures') or {}).items():
        source = picture_source(pattern)
        if source is None:
            lines.append(f'picture {name}: nothing matches {pattern}')
            continue
        dest = osp.join(pictures_dir, f'{name}.png')
        width, height = save_picture(source, dest)
        lines.append(f'picture {name}: {source} -> {dest} ({width}x{height}, '
                     f'{osp.getsize(dest) / 1000:.0f} kB)')
    return lines


def compose_overview(pictures_dir: str, names=OVERVIEW, height: int = OVERVIEW_HEIGHT
                     ) -> Optional[str]:
    """``<pictures_dir>/overview.png``: the pictures ``names`` that exist there, each scaled to
    ``height`` pixels, left to right 8 px apart on white; returns its path (``None``: none)."""
    from PIL import Image
    parts = []
    for name in names:
        path = osp.join(pictures_dir, f'{name}.png')
        if osp.isfile(path):
            image = Image.open(path).convert('RGB')
            width = max(1, round(image.width * height / image.height))
            parts.append(image.resize((width, height), Image.LANCZOS))
    if not parts:
        return None
    canvas = Image.new('RGB', (sum(p.width for p in parts) + 8 * (len(parts) - 1), height),
                       'white')
    left = 0
    for part in parts:
        canvas.paste(part, (left, 0))
        left += part.width + 8
    dest = osp.join(pictures_dir, 'overview.png')
    save_picture(canvas, dest)
    return dest


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


def write_record(out_dir: str, name: str, wall: Optional[float], status: str,
                 key: Optional[dict] = None, result: Optional[str] = None) -> None:
    """The run's wall time and status, so that a later run that finds the job current still
    reports what running it cost, with the currency key it ran under and its result's digest."""
    os.makedirs(osp.join(out_dir, 'logs'), exist_ok=True)
    with open(record_path(out_dir, name), 'w') as f:
        json.dump(dict(job=name, wall_time_s=wall, status=status, key=key, result=result,
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
        key = currency_key(job)
        record = read_record(args.out_dir, name)
        stale = stale_reasons(job, record, key)
        if commands in ran:
            status = made_by
            write_record(args.out_dir, name, None, status, key, result_digest(job))
            print(f'{prefix}: result current, made by {owner}\'s command', flush=True)
        elif not args.force and not stale:
            status = 'current (not re-run)'
            if owner != name:  # its wall time is the earlier job's, whose command made it
                status = made_by
            else:
                # What the run that wrote the result cost: its record, else the last results.json.
                wall = successful(record).get('wall_time_s')
                if wall is None:
                    row = successful(previous.get(name, {}))
                    wall = row.get('wall_time_s')
                    if wall is not None:
                        write_record(args.out_dir, name, wall, row.get('status', 'ran'), key,
                                     record.get('result'))
            print(f'{prefix}: result current, skipped ({newest(job["results"])})', flush=True)
        else:
            reason = 'forced' if args.force else '; '.join(stale)
            print(f'{prefix}: running ({reason}) {" && ".join(job_commands(job))} ...',
                  flush=True)
            began = time.perf_counter()
            code = run_job(job, osp.join(args.out_dir, 'logs', f'{name}.log'))
            wall = time.perf_counter() - began
            status = 'ran' if code == 0 else f'FAILED (exit {code}, see logs/{name}.log)'
            ran.add(commands)
            write_record(args.out_dir, name, wall, status, key, result_digest(job))
            print(f'{prefix}: {status} in {wall / 60:.1f} min '
                  f'(suite {(time.perf_counter() - start) / 60:.1f} min)', flush=True)
        if not status.startswith('FAILED'):
            for line in save_pictures(job, args.pictures_dir):
                print(f'{prefix}: {line}', flush=True)
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
    overview = compose_overview(args.pictures_dir)
    if overview:
        print(f'overview picture: {overview}', flush=True)
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

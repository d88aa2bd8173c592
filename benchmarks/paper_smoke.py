"""Every paper config at its real size on this machine: builds the config's model from real-size
random checkpoints (tools/analysis_tools/make_random_checkpoints.py, written on demand to the
cache folder), and runs one training iteration (the config's optim wrapper, ``train_step``) and one
test iteration (``test_step``) at batch 1 on CPU, on a synthetic batch of the config's task at its
training input size (benchmarks/paper_models.py; no dataset is read). One config at a time, each in
its own process, watched: a process whose resident memory passes ``--mem-limit`` GiB (or that
leaves the machine under 1 GiB available) is stopped and reported with the memory it had reached.

    python benchmarks/paper_smoke.py [--only CONFIG ...] [--crop H W] [--mem-limit 20]
        [--checkpoints work_dirs/random_checkpoints] [--out work_dirs/paper_smoke]
        [--timeout 3600]

Writes ``results.md`` and ``results.json`` under ``--out`` (one row a config: parameters total /
trainable, peak resident memory, seconds to build, seconds per training and test iteration, pass
or the one-line error), appending to what an earlier run wrote (a config run again replaces its
row). The test iteration reads the training batch (the same input size), and the configs'
generation-evaluation hooks (FID sampling) are not run. Weights are random: figures of memory and
time, never of accuracy. `make paper-smoke` runs every config.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
import traceback

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from benchmarks.paper_models import (GROUPS, ROOT, checkpoints_read, ensure_checkpoints,  # noqa
                                     point_at_cache)

DEFAULT_CACHE = osp.join(ROOT, 'work_dirs', 'random_checkpoints')
DEFAULT_OUT = osp.join(ROOT, 'work_dirs', 'paper_smoke')
GiB = 2**30


# -- one config (the child process) ---------------------------------------------------------------
# LVIS v1's categories by frequency group (rare / common / frequent: 337 + 461 + 405 = 1203).
LVIS_V1_FREQUENCIES = dict(r=337, c=461, f=405)
LVIS_VOCABULARY = 'genrep.LVISV1VocabularyDataset'


def standin_lvis_root(out: str) -> str:
    """A data root holding ``annotations/lvis_v1_categories.json`` with LVIS v1's category count
    in each frequency group and placeholder names ('lvis category <id>'), written once under
    ``out``: what an OV-LVIS config's vocabulary reads where the real file is not here (the
    weights are random anyway; only the class table's size matters)."""
    root = osp.join(out, 'lvis_v1_standin')
    path = osp.join(root, 'annotations', 'lvis_v1_categories.json')
    if not osp.isfile(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
        categories, next_id = [], 1
        for frequency, count in LVIS_V1_FREQUENCIES.items():
            for _ in range(count):
                categories.append(dict(id=next_id, name=f'lvis category {next_id}',
                                       frequency=frequency))
                next_id += 1
        with open(path, 'w') as f:
            json.dump(categories, f)
    return root


def use_standin_vocabulary(value, root: str):
    """``value`` (a config's dict) with every LVIS vocabulary whose categories file is absent
    read from ``root`` instead, and whether any was."""
    if isinstance(value, dict):
        if (value.get('type') == LVIS_VOCABULARY and value.get('categories_file')
                and not osp.isfile(osp.join(value.get('data_root') or '',
                                            value['categories_file']))):
            return dict(value, data_root=root,
                        categories_file='annotations/lvis_v1_categories.json'), True
        pairs = [(k, use_standin_vocabulary(v, root)) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, any(used for _, (_, used) in pairs)
    if isinstance(value, (list, tuple)):
        pairs = [use_standin_vocabulary(v, root) for v in value]
        return type(value)(v for v, _ in pairs), any(used for _, used in pairs)
    return value, False


def _uint8_batch(inputs):
    """The synthetic batch's [-1, 1] inputs as the uint8 images a data loader would give."""
    import torch
    return [((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8) for img in inputs]


def run_one(name: str, cache: str, crop=None, out: str = DEFAULT_OUT) -> dict:
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    import genrep  # noqa: F401
    from benchmarks.paper_models import load_config, synthetic_batch, train_input_shape
    torch.manual_seed(0)
    cfg = load_config(name)
    shape = tuple(crop) if crop else train_input_shape(cfg)
    result = dict(config=name, input=f'{shape[0]}x{shape[1]}')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model_dict, standin = use_standin_vocabulary(point_at_cache(cfg.model.to_dict(), cache),
                                                 standin_lvis_root(out))
    if standin:
        result['note'] = 'stand-in LVIS v1 categories file: placeholder names'
    model_cfg = Config(dict(model=model_dict)).model
    if crop:  # the data preprocessor pads or crops to the configured size
        for holder in (model_cfg, model_cfg.get('perception', {})):
            dp = holder.get('data_preprocessor') if holder else None
            if dp is not None and dp.get('size') is not None:
                dp['size'] = tuple(shape)
    start = time.perf_counter()
    model = MODELS.build(model_cfg)
    result['build_s'] = time.perf_counter() - start
    result['params_total'] = sum(p.numel() for p in model.parameters())
    result['params_trainable'] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    inputs, samples = synthetic_batch(cfg, shape)
    data = dict(inputs=_uint8_batch(inputs), data_samples=samples)
    model.train()
    start = time.perf_counter()
    log_vars = model.train_step(data, optim_wrapper)
    result['train_s'] = time.perf_counter() - start
    bad = [k for k, v in log_vars.items() if not torch.isfinite(torch.as_tensor(v)).all()]
    if bad:
        raise FloatingPointError(f'non-finite training logs: {bad}')
    for key, value in log_vars.items():
        for name in ('teacher_evals', 'teacher_time'):
            if key.endswith(name):
                result[name] = float(value)
    model.eval()
    _, samples = synthetic_batch(cfg, shape)
    start = time.perf_counter()
    with torch.no_grad():
        model.test_step(dict(inputs=_uint8_batch(inputs), data_samples=samples))
    result['test_s'] = time.perf_counter() - start
    return result


def child_main(args):
    try:
        result = run_one(args.one, args.checkpoints, args.crop, args.out)
        result['status'] = 'pass'
    except Exception as error:
        traceback.print_exc()
        line = str(error).strip().splitlines()[0] if str(error).strip() else ''
        result = dict(config=args.one, status=f'{type(error).__name__}: {line}'[:200])
    result['peak_rss_gib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB
    print('RESULT ' + json.dumps(result), flush=True)


# -- the watchdog (the parent) --------------------------------------------------------------------
def _rss_bytes(pid: int) -> int:
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _available_bytes() -> int:
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    return 0


def watch(command, mem_limit: float, timeout: float, log_path: str) -> dict:
    """Runs ``command``; stops it past ``mem_limit`` GiB resident, under 1 GiB available on the
    machine, or after ``timeout`` s. Returns the child's RESULT (or the reason it was stopped)."""
    peak, reason = 0, None
    start = time.time()
    with open(log_path, 'w') as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True,
                                   env=dict(os.environ, OMP_NUM_THREADS=os.environ.get(
                                       'OMP_NUM_THREADS', '1')))
        output = []
        import threading
        reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
        reader.start()
        while process.poll() is None:
            rss = _rss_bytes(process.pid)
            peak = max(peak, rss)
            if rss > mem_limit * GiB:
                reason = f'stopped: resident memory past {mem_limit:.0f} GiB'
            elif _available_bytes() < GiB:
                reason = (f'stopped: the machine fell under 1 GiB available at '
                          f'{rss / GiB:.1f} GiB resident')
            elif time.time() - start > timeout:
                reason = f'stopped: past {timeout:.0f} s'
            if reason:
                process.kill()
                process.wait()
                break
            time.sleep(0.5)
        reader.join(timeout=5)
    for line in output:
        if line.startswith('RESULT '):
            result = json.loads(line[len('RESULT '):])
            result['peak_rss_gib'] = max(result.get('peak_rss_gib', 0), peak / GiB)
            return result
    status = reason or f'exited {process.returncode} without a result (see {log_path})'
    return dict(status=status, peak_rss_gib=peak / GiB)


def table(results: dict) -> str:
    lines = ['| config | input | params total / trainable (M) | peak RSS (GiB) | build (s) | '
             's / train iter | s / test iter | teacher calls | result |',
             '|---|---|---|---|---|---|---|---|---|']
    for name, r in results.items():
        params = (f"{r['params_total'] / 1e6:,.1f} / {r['params_trainable'] / 1e6:,.1f}"
                  if 'params_total' in r else '-')

        def seconds(key):
            return f'{r[key]:.1f}' if key in r else '-'

        teacher = f"{r['teacher_evals']:.0f}" if 'teacher_evals' in r else '-'
        lines.append(f"| {name} | {r.get('input', '-')} | {params} | "
                     f"{r.get('peak_rss_gib', 0):.1f} | {seconds('build_s')} | "
                     f"{seconds('train_s')} | {seconds('test_s')} | {teacher} | {r['status']}"
                     f"{' (' + r['note'] + ')' if r.get('note') else ''} |")
    return '\n'.join(lines)


def parent_main(args):
    names = args.only or [n for _, group in GROUPS for n in group]
    os.makedirs(args.out, exist_ok=True)
    json_path = osp.join(args.out, 'results.json')
    results = {}
    if osp.isfile(json_path):
        with open(json_path) as f:
            results = json.load(f)
    from benchmarks.paper_models import load_config
    for name in names:
        ensure_checkpoints(checkpoints_read(load_config(name).model.to_dict()), args.checkpoints)
        print(f'{name} ...', flush=True)
        command = [sys.executable, osp.abspath(__file__), '--one', name, '--checkpoints',
                   args.checkpoints, '--out', args.out]
        if args.crop:
            command += ['--crop', *map(str, args.crop)]
        result = watch(command, args.mem_limit, args.timeout,
                       osp.join(args.out, f'{name}.log'))
        result.setdefault('config', name)
        results[name] = result
        print(json.dumps(result), flush=True)
        with open(json_path, 'w') as f:
            json.dump(results, f, indent=1)
        with open(osp.join(args.out, 'results.md'), 'w') as f:
            f.write(table(results) + '\n')
    print(table(results))


def parse_args():
    parser = argparse.ArgumentParser(description='Paper configs at real size, one iteration each')
    parser.add_argument('--only', nargs='+', help='config names (default: every paper config)')
    parser.add_argument('--crop', nargs=2, type=int, help='another input size (H W)')
    parser.add_argument('--checkpoints', default=DEFAULT_CACHE)
    parser.add_argument('--out', default=DEFAULT_OUT)
    parser.add_argument('--mem-limit', type=float, default=20.0, help='GiB resident')
    parser.add_argument('--timeout', type=float, default=3600, help='seconds a config')
    parser.add_argument('--one', help=argparse.SUPPRESS)  # the child process
    return parser.parse_args()


if __name__ == '__main__':
    arguments = parse_args()
    if arguments.one:
        child_main(arguments)
    else:
        parent_main(arguments)

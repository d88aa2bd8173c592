"""The GPU check of the paper configs, one command for the day a GPU is at hand (about 5-8 minutes
on one H100):

    python benchmarks/gpu_check.py [--out work_dirs/gpu_check.json]

1. Stage 1 and stage 2 of ade20k_ldm and imagenet256_dit at real size with random weights (the
   upstream shapes of tools/analysis_tools/make_random_checkpoints.py, built in memory), at the
   config's per-GPU batch (2 and 32) and training input (768 x 768, 256 x 256), under bf16 autocast
   with the config's optim wrapper: one warm-up iteration, then ``--iters`` timed ones on a
   synthetic batch of the task (benchmarks/paper_models.py). Printed: seconds per iteration, peak
   GPU memory, the teacher's share of the iteration (its seconds, which GenRep logs as
   teacher_time, over the iteration's).
2. The DiT sampler against diffusers' DiTPipeline on the same real-size DiT-XL/2-256 (random
   weights, written once to a temporary folder): benchmarks/sampling_throughput.py at batch 32,
   50 steps, guidance 1.5, 3 interleaved rounds; printed as genrep / diffusers throughput.

Everything is also written as JSON (``--out``; under $OUT when that is set). ``--device cpu
--tiny --iters 1`` runs the same code at batch 1 on CPU (no sampler), only to check that it runs.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFIGS = ['ade20k_ldm_genrep_stage1', 'ade20k_ldm_genrep_stage2',
           'imagenet256_dit_genrep_stage1', 'imagenet256_dit_genrep_stage2']


def parse_args(argv=None):
    import torch
    parser = argparse.ArgumentParser(description='Real-size GenRep iterations and sampling on '
                                     'one GPU')
    parser.add_argument('--configs', nargs='+', default=CONFIGS)
    parser.add_argument('--iters', type=int, default=3, help='timed iterations a config')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--tiny', action='store_true',
                        help='batch 1, no sampler: a CPU check that it runs')
    parser.add_argument('--no-sampler', action='store_true')
    default_out = osp.join(os.environ['OUT'], 'gpu_check.json') if os.environ.get('OUT') else \
        'work_dirs/gpu_check.json'
    parser.add_argument('--out', default=default_out)
    return parser.parse_args(argv)


def _to_device(samples, device):
    return [s.to(device) for s in samples]


def build_model(name: str, device: str):
    """(model, cfg) of config ``name`` at real size, random weights, on ``device``."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    import genrep  # noqa: F401
    from benchmarks.paper_models import load_config, with_random_checkpoint_configs
    cfg = load_config(name)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model_cfg = cfg.model.to_dict()
    model_cfg['perception'] = with_random_checkpoint_configs(model_cfg['perception'])
    with torch.device(device):
        model = MODELS.build(Config(dict(model=model_cfg)).model)
    return model.to(device), cfg


def _logged(log_vars: dict, name: str) -> float:
    """GenRep's logged ``name`` (under its objective's prefix, e.g. percept_teacher_time)."""
    return sum(float(v) for k, v in log_vars.items() if k.endswith(name))


def time_config(name: str, args) -> dict:
    import torch
    from mmengine.optim import build_optim_wrapper

    from benchmarks.paper_models import synthetic_batch, train_input_shape
    torch.manual_seed(0)
    model, cfg = build_model(name, args.device)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    shape = train_input_shape(cfg)
    batch = 1 if args.tiny else cfg.train_dataloader.batch_size
    inputs, samples = synthetic_batch(cfg, shape, batch=batch)
    images = [((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8) for img in inputs]
    data = dict(inputs=[i.to(args.device) for i in images],
                data_samples=_to_device(samples, args.device))
    cuda = args.device.startswith('cuda')
    model.train()
    seconds, teacher = [], []
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for step in range(1 + args.iters):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(args.device.split(':')[0], dtype=torch.bfloat16, enabled=cuda):
            log_vars = model.train_step(data, optim_wrapper)
        if cuda:
            torch.cuda.synchronize()
        if step:  # the first is the warm-up
            seconds.append(time.perf_counter() - start)
            teacher.append(_logged(log_vars, 'teacher_time'))
    result = dict(config=name, batch=batch, input=list(shape),
                  s_per_iter=statistics.median(seconds),
                  teacher_share=statistics.median(t / s for t, s in zip(teacher, seconds)),
                  teacher_evals=_logged(log_vars, 'teacher_evals'))
    if cuda:
        result['peak_gib'] = torch.cuda.max_memory_allocated() / 2**30
    del model, optim_wrapper
    if cuda:
        torch.cuda.empty_cache()
    return result


def sampler_ratio(args) -> dict:
    from benchmarks import sampling_throughput
    from benchmarks.paper_models import random_checkpoints
    with tempfile.TemporaryDirectory() as tmp:
        folder = random_checkpoints().write_checkpoint('DiT-XL-2-256', tmp)
        rate = sampling_throughput.main(['--pretrained', folder, '--batch', '32', '--steps', '50',
                                         '--rounds', '3', '--device', args.device])
    return dict(genrep_images_per_s=rate['genrep'], diffusers_images_per_s=rate['diffusers'],
                ratio=rate['genrep'] / rate['diffusers'])


def main(argv=None):
    import torch
    args = parse_args(argv)
    report = dict(device=torch.cuda.get_device_name() if args.device.startswith('cuda') else
                  args.device, configs=[])
    for name in args.configs:
        try:
            result = time_config(name, args)
        except Exception as error:
            result = dict(config=name, error=f'{type(error).__name__}: {error}'[:300])
        report['configs'].append(result)
        print(json.dumps(result), flush=True)
    if not (args.tiny or args.no_sampler):
        try:
            report['sampler'] = sampler_ratio(args)
        except Exception as error:
            report['sampler'] = dict(error=f'{type(error).__name__}: {error}'[:300])
        print(json.dumps(report['sampler']), flush=True)
    print(f"\n{report['device']}")
    print('| config | batch | s/iter | peak GiB | teacher share | teacher calls |')
    print('|---|---|---|---|---|---|')
    for r in report['configs']:
        if 'error' in r:
            print(f"| {r['config']} | - | - | - | - | {r['error']} |")
            continue
        print(f"| {r['config']} | {r['batch']} | {r['s_per_iter']:.3f} | "
              f"{r.get('peak_gib', float('nan')):.1f} | {100 * r['teacher_share']:.1f}% | "
              f"{r['teacher_evals']:.0f} |")
    if 'sampler' in report and 'ratio' in report['sampler']:
        print(f"DiT-XL/2-256 sampler, genrep / diffusers DiTPipeline: "
              f"{report['sampler']['ratio']:.3f}")
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()

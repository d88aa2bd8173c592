"""Cost of one GenRep stage-2 training step, as ratios measured in one run.

Compares, on the same model and batch:
  perception  a stage-1 step (task loss + L_gen_distil, plain OptimWrapper)
  summed      a joint step whose two losses are simply added (plain OptimWrapper, one backward)
  stage2      the GenRep stage-2 step with gradient alignment (GradientAlignOptimWrapper)
and prints the median step time of each and its ratio to `perception` and to `summed`, plus the
peak memory of each (CUDA: max allocated; CPU: the peak RSS of the process). Each variant runs in a
process of its own, so that the peaks do not mix.

    python benchmarks/stage2_step.py [--device cuda] [--batch 64] [--steps 10]
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

import genrep  # noqa: F401
from genrep.engine import GradientAlignOptimWrapper
from genrep.models import GenRep

SCHEDULER = dict(num_train_timesteps=1000, variance_type='learned_range', clip_sample=False)


def model_cfg(stage, size, channels):
    unet = dict(
        type='genrep.UNet2DDenoiser',
        config=dict(
            sample_size=size, in_channels=1, out_channels=2, block_out_channels=channels,
            layers_per_block=1,
            down_block_types=('DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D'),
            up_block_types=('AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'),
            norm_num_groups=8, num_class_embeds=11))
    perception = dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='genrep.DiffusionBackbone', denoiser=unet),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=10, in_channels=channels[-1],
                  loss=dict(type='mmpretrain.CrossEntropyLoss')),
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor', num_classes=10,
                               mean=[127.5], std=[127.5], to_rgb=False))
    cfg = dict(
        perception=perception, stage=stage,
        schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER),
        posterior=dict(type='ReverseChainPosterior', burn_in=2, thinning=2, temperature=0.1,
                       schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER,
                                     num_inference_steps=8)),
        num_candidates=2, distill_images=16)
    if stage == 2:
        cfg.update(semantic_noise=dict(), rep_align=dict(hidden_channels=256))
    return cfg


class SummedLosses(GenRep):
    """The joint step without alignment: L_percept + L_genera, one backward."""

    def parse_losses(self, losses):
        parsed, log_vars = super().parse_losses(losses)
        return parsed['percept'] + parsed['genera'], log_vars


def peak_memory(device):
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(model, wrapper_cls, data, steps, device):
    model.to(device).train()
    wrapper = wrapper_cls(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                            lr=1e-4))
    times = []
    for i in range(steps + 2):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model.train_step(data, wrapper)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times), peak_memory(device)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--variant', choices=['perception', 'summed', 'stage2'],
                        help='run one variant in this process (used by the driver)')
    args = parser.parse_args()
    device = torch.device(args.device)
    channels = (16, 32, 64, 128)
    data = dict(
        inputs=[torch.randint(0, 256, (1, args.size, args.size), dtype=torch.uint8)
                for _ in range(args.batch)],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(args.batch)])

    variants = dict(
        perception=(GenRep, 1, OptimWrapper),
        summed=(SummedLosses, 2, OptimWrapper),
        stage2=(GenRep, 2, GradientAlignOptimWrapper),
    )
    if args.variant is not None:
        model_cls, stage, wrapper_cls = variants[args.variant]
        torch.manual_seed(0)
        model = model_cls(**model_cfg(stage, args.size, channels))
        seconds, memory = run(model, wrapper_cls, data, args.steps, device)
        print(json.dumps(dict(seconds=seconds, memory=memory)))
        return

    results = {}
    for name in variants:
        out = subprocess.run([sys.executable, __file__, '--variant', name, '--device', args.device,
                              '--batch', str(args.batch), '--steps', str(args.steps),
                              '--size', str(args.size)], capture_output=True, text=True,
                             check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results[name] = (result['seconds'], result['memory'])
    print(f'device={device} batch={args.batch} size={args.size} steps={args.steps}')
    base_t, summed_t = results['perception'][0], results['summed'][0]
    base_m = results['perception'][1]
    for name, (seconds, memory) in results.items():
        print(f'{name:>10}: {seconds * 1e3:8.1f} ms/step  x{seconds / base_t:5.2f} vs perception  '
              f'x{seconds / summed_t:5.2f} vs summed  peak memory {memory / 2**20:8.1f} MiB '
              f'(x{memory / base_m:4.2f})')


if __name__ == '__main__':
    main()

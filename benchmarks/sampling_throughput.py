"""Sampling throughput of genrep's sampler against diffusers' own pipeline loop, on the same weights.

  genrep     ``GenRep.sample_classes`` of the model configs/genrep/imagenet256_dit.py builds: the
             path of tools/sample.py and GenerationEvalHook (respaced ancestral steps with DiT's
             learned-range variance, classifier-free guidance, the VAE decode)
  diffusers  ``diffusers.DiTPipeline`` holding the very same transformer and VAE modules, with a
             DDPMScheduler of the config's beta schedule (its fixed variance: the pipeline drops
             the learned one), the same number of steps, batch and guidance scale

Both do one denoiser call per step on a doubled batch when guided, and decode once, so the ratio
measures the overhead of genrep's loop (schedule arithmetic, the guidance combination, the learned
variance) around the same network. The two are timed in interleaved rounds (A, B, A, B, ...) so a
drift of the machine hits both alike; the median of the rounds is reported with its spread.

    python benchmarks/sampling_throughput.py [--pretrained DIR] [--batch 8] [--steps 50]
        [--guidance-scale 1.5] [--rounds 5] [--device cuda]

``--pretrained``: a DiTPipeline folder (transformer/, vae/), e.g. DiT-XL-2-256 saved locally;
without it a small random DiT (``--depth`` blocks, ``--width`` channels, ``--latent-size``) and a
2-level VAE are written to a temporary folder.
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import genrep  # noqa: F401,E402  (applies genrep.compat before diffusers imports torchvision)
import torch  # noqa: E402

from genrep.apis import init_model  # noqa: E402

CONFIG = 'configs/genrep/imagenet256_dit.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='genrep sampling vs diffusers DiTPipeline')
    parser.add_argument('--pretrained', help='DiTPipeline folder; default: a small random one')
    parser.add_argument('--depth', type=int, default=4, help='blocks of the random DiT')
    parser.add_argument('--width', type=int, default=128, help='width of the random DiT')
    parser.add_argument('--latent-size', type=int, default=16, help='latent side, random DiT')
    parser.add_argument('--batch', type=int, default=8, help='images per sampling call')
    parser.add_argument('--steps', type=int, default=50, help='respaced reverse steps')
    parser.add_argument('--guidance-scale', type=float, default=1.5)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args(argv)


def write_random_dit(folder: str, depth: int, width: int, latent_size: int) -> str:
    """A DiTPipeline-style folder: a random DiT (1000 classes + null, learned sigma, patch 2,
    heads of 32 channels) and a 2-level AutoencoderKL (4 latent channels, x1/2)."""
    from diffusers import AutoencoderKL, DiTTransformer2DModel
    DiTTransformer2DModel(
        sample_size=latent_size, in_channels=4, out_channels=8, patch_size=2,
        num_layers=depth, num_attention_heads=width // 32, attention_head_dim=32,
        num_embeds_ada_norm=1000).save_pretrained(osp.join(folder, 'transformer'))
    AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
        down_block_types=('DownEncoderBlock2D', ) * 2, up_block_types=('UpDecoderBlock2D', ) * 2,
        norm_num_groups=16, layers_per_block=1).save_pretrained(osp.join(folder, 'vae'))
    return folder


def build(pretrained: str, device: str):
    """(GenRep of the DiT config on ``pretrained``, DiTPipeline on the same modules)."""
    from diffusers import DDPMScheduler, DiTPipeline
    from diffusers import DiTTransformer2DModel
    width = DiTTransformer2DModel.load_config(osp.join(pretrained, 'transformer'))
    width = width['num_attention_heads'] * width['attention_head_dim']
    model = init_model(CONFIG, None, device, {
        'model.perception.backbone.vae.pretrained': pretrained,
        'model.perception.backbone.denoiser.pretrained': pretrained,
        'model.perception.head.in_channels': width,
    })
    from mmengine.config import Config
    scheduler = Config.fromfile(CONFIG).scheduler
    pipeline = DiTPipeline(
        transformer=model.denoiser.model, vae=model.backbone.vae,
        scheduler=DDPMScheduler(num_train_timesteps=scheduler.num_train_timesteps,
                                beta_schedule=scheduler.beta_schedule,
                                beta_start=scheduler.beta_start, beta_end=scheduler.beta_end,
                                clip_sample=False))
    pipeline.set_progress_bar_config(disable=True)
    return model, pipeline


def synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pretrained = args.pretrained or write_random_dit(tmp, args.depth, args.width,
                                                         args.latent_size)
        model, pipeline = build(pretrained, args.device)
        classes = [i % model.denoiser.num_classes for i in range(args.batch)]

        def genrep_sample(seed):
            model.sample_classes(classes, 1, args.steps, seed, None,
                                 guidance_scale=args.guidance_scale)

        def diffusers_sample(seed):
            generator = torch.Generator(args.device).manual_seed(seed)
            pipeline(class_labels=classes, guidance_scale=args.guidance_scale,
                     num_inference_steps=args.steps, generator=generator, output_type='np')

        runs = dict(genrep=genrep_sample, diffusers=diffusers_sample)
        seconds = {name: [] for name in runs}
        with torch.no_grad():
            for name, run in runs.items():  # warm-up
                run(0)
            for round_index in range(args.rounds):
                for name, run in runs.items():
                    synchronize(args.device)
                    start = time.perf_counter()
                    run(round_index + 1)
                    synchronize(args.device)
                    seconds[name].append(time.perf_counter() - start)

    dit = model.denoiser.model.config
    latent = dit.sample_size
    print(f'DiT {dit.num_layers} blocks x {dit.num_attention_heads * dit.attention_head_dim} '
          f'channels, latent {latent}x{latent}, batch {args.batch}, {args.steps} steps, '
          f'guidance {args.guidance_scale}, {args.rounds} rounds on {args.device} '
          f'({torch.get_num_threads()} threads)')
    rate = {}
    for name, times in seconds.items():
        median = statistics.median(times)
        rate[name] = args.batch / median
        q = statistics.quantiles(times, n=4) if len(times) > 1 else [median] * 3
        print(f'{name:10s} {rate[name]:8.2f} images/s  (median {median:.3f} s a batch, '
              f'IQR {q[0]:.3f}..{q[2]:.3f} s)')
    print(f'genrep / diffusers throughput: {rate["genrep"] / rate["diffusers"]:.3f}')
    return rate


if __name__ == '__main__':
    main()

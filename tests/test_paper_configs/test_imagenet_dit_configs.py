"""The paper's ImageNet-256 DiT configs (configs/genrep/imagenet256_dit*.py) load, build from a tiny
random DiT + VAE checkpoint written where they look for it, train two iterations on images written
in mmpretrain's ImageNet layout (train/<wnid>/*.JPEG, val/*.JPEG, meta/{train,val}.txt), and test:
top-1 / top-5 and, from the same checkpoint, the generation metrics of guided class-conditional
samples (in MobileNetV2 space here: the Inception weights are not on this machine)."""
import math
import os.path as osp

import pytest
import torch
from metric_oracles import checked_test_top1
from paper_config_helpers import (CROP, TINY_VAE_FACTOR, build_runner, config_path,
                                  shrink_generation_config, write_imagenet)

from mmengine.config import Config

DATA_ROOT = 'data/imagenet'


def tiny(name, tmp_path, extra=None):
    from paper_config_helpers import write_dit_checkpoint
    write_dit_checkpoint('checkpoints/DiT-XL-2-256', sample_size=CROP // TINY_VAE_FACTOR)
    cfg = Config.fromfile(config_path(name))
    # the tiny DiT's width
    return shrink_generation_config(cfg, tmp_path, {'model.perception.head.in_channels': 16,
                                                    **(extra or {})})


@pytest.fixture
def imagenet_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_imagenet(DATA_ROOT)
    return tmp_path


def test_imagenet256_dit_config_is_dit_xl2():
    cfg = Config.fromfile(config_path('imagenet256_dit.py'))
    assert cfg.model.label_dropout == 0.1 and cfg.model.stage == 0
    assert cfg.scheduler.variance_type == 'learned_range'
    assert cfg.model.perception.head.num_classes == 1000
    hook = cfg.custom_hooks[0]
    assert hook.sampling == dict(guidance_scale=1.5) and hook.samples_per_class == 50


def test_imagenet256_dit_trains_then_tests_both_tasks(imagenet_workdir):
    runner = build_runner(tiny('imagenet256_dit.py', imagenet_workdir),
                          str(imagenet_workdir / 'work'))
    dit = runner.model.denoiser.model
    assert type(dit).__name__ == 'DiTTransformer2DModel' and dit.config.num_embeds_ada_norm == 1000
    assert runner.model.denoiser.learn_sigma
    runner.train()
    hub = runner.message_hub
    assert math.isfinite(hub.get_scalar('train/genera_loss_diffusion').current())
    assert math.isfinite(hub.get_scalar('train/genera_loss_vlb').current())
    metrics = checked_test_top1(runner)
    for name in ('fid', 'is', 'precision', 'recall'):
        key = f'generation/{name}_mobilenet_v2'
        assert key in metrics and math.isfinite(metrics[key]), (key, metrics)
    assert osp.isfile(imagenet_workdir / 'work' / 'samples.png')


def test_imagenet256_dit_genrep_stage1_distils(imagenet_workdir):
    extra = {'model.posterior.schedule.num_inference_steps': 10, 'model.posterior.burn_in': 2,
             'load_from': None}
    runner = build_runner(tiny('imagenet256_dit_genrep_stage1.py', imagenet_workdir, extra),
                          str(imagenet_workdir / 'work'))
    trainable = {n for n, p in runner.model.named_parameters() if p.requires_grad}
    assert trainable and all('.attn1.' in n or n.startswith('perception.head.') for n in trainable)
    runner.train()
    distil = runner.message_hub.get_scalar('train/percept_loss_gen_distil').current()
    assert math.isfinite(distil) and distil >= 0
    assert torch.isfinite(torch.tensor(runner.message_hub.get_scalar('train/loss').current()))

"""The paper's ImageNet-256 DiT configs (configs/genrep/imagenet256_dit*.py) load, build from a tiny
random DiT + VAE checkpoint written where they look for it, train two iterations on images written
in mmpretrain's ImageNet layout (train/<wnid>/*.JPEG, val/*.JPEG, meta/{train,val}.txt), and test:
top-1 / top-5 and, from the same checkpoint, the generation metrics of guided class-conditional
samples (in MobileNetV2 space here: the Inception weights are not on this machine)."""
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch
from paper_config_helpers import CROP, TINY_VAE_FACTOR, build_runner, config_path

from mmengine.config import Config

DATA_ROOT = 'data/imagenet'
WNIDS = ['n01440764', 'n01443537', 'n01484850']


def write_imagenet(root, per_class=2, size=(40, 36), seed=0):
    """A few JPEGs of 3 classes in mmpretrain's ImageNet layout, labels 0, 1, 2 in meta/*.txt."""
    import mmcv
    rng = np.random.default_rng(seed)
    lines = {'train': [], 'val': []}
    for label, wnid in enumerate(WNIDS):
        colour = rng.integers(0, 256, 3)
        for k in range(per_class):
            image = np.clip(colour + rng.integers(-30, 30, (*size, 3)), 0, 255).astype(np.uint8)
            name = f'{wnid}/{wnid}_{k}.JPEG'
            mmcv.imwrite(image, osp.join(root, 'train', name))
            lines['train'].append(f'{name} {label}')
            val_name = f'ILSVRC2012_val_{label * per_class + k + 1:08d}.JPEG'
            mmcv.imwrite(image[::-1].copy(), osp.join(root, 'val', val_name))
            lines['val'].append(f'{val_name} {label}')
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, split_lines in lines.items():
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(split_lines) + '\n')


def tiny(name, tmp_path, extra=None):
    from paper_config_helpers import write_dit_checkpoint
    write_dit_checkpoint('checkpoints/DiT-XL-2-256', sample_size=CROP // TINY_VAE_FACTOR)
    cfg = Config.fromfile(config_path(name))
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=CROP, edge='short', backend='pillow',
             interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=CROP),
        dict(type='PackInputs'),
    ]
    options = {
        'model.perception.head.in_channels': 16,  # the tiny DiT's width
        'train_dataloader.batch_size': 2,
        'train_dataloader.dataset.pipeline': pipeline[:3] + [
            dict(type='RandomFlip', prob=0.5, direction='horizontal'), pipeline[3]],
        'test_dataloader.dataset.pipeline': pipeline,
        'val_dataloader.dataset.pipeline': pipeline,
        'train_cfg.max_iters': 2,
        'default_hooks.logger.interval': 1,
        'randomness.seed': 0,
    }
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options[f'{loader}.num_workers'] = 0
        options[f'{loader}.persistent_workers'] = False
    cfg.merge_from_dict(options)
    # The generation test from the same checkpoint, shrunk: 2 classes x 3 guided samples of 2
    # steps, scored in MobileNetV2 space against 6 training images.
    for hook in cfg.custom_hooks:
        if hook['type'] == 'genrep.GenerationEvalHook':
            hook.update(classes=[0, 2], samples_per_class=3, num_steps=2, batch_size=6)
            hook['metric'].update(features=['mobilenet_v2'], num_real=6, prc_num_real=6,
                                  is_splits=2, real_stats_dir=str(tmp_path / 'real_stats'),
                                  inception_weights=None)
            hook['metric']['real_dataset']['pipeline'] = pipeline
    cfg.merge_from_dict(extra or {})
    return cfg


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
    metrics = runner.test()
    assert 0 <= metrics['accuracy/top1'] <= 100
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

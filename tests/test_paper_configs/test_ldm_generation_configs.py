"""The paper's LDM generation configs (configs/genrep/{imagenet256,celebahq256,lsun_church256}_ldm*.py)
load, build from a tiny random diffusers checkpoint written where they look for it (a
UNet2DConditionModel + VQModel for ImageNet's LDM-8, an unconditional UNet2DModel + VQModel for
CelebA-HQ's LDM-4 and + AutoencoderKL for LSUN-Churches' LDM-KL-8), train two iterations on a few
images in each dataset's real layout, and the GenRep stage-2 configs test one checkpoint for both
tasks: accuracy and the generation metrics (MobileNetV2 space: no Inception weights here)."""
import math
import os.path as osp

import numpy as np
import pytest
from metric_oracles import checked_test_miou, checked_test_top1
from paper_config_helpers import (CROP, build_runner, config_path, shrink_generation_config,
                                  write_imagenet)

from mmengine.config import Config

TINY_UNET = dict(sample_size=CROP // 2, block_out_channels=(16, 32, 32), layers_per_block=1,
                 norm_num_groups=4)


def write_ldm_checkpoint(root, conditional: bool, first_stage: str, latent_channels: int,
                         scaling_factor: float = 0.1875):
    """A tiny LDM folder as tools/model_converters/ldm_to_diffusers.py writes it: ``unet/``
    (UNet2DConditionModel with cross-attention, and ``class_embedding.safetensors``, the
    ClassEmbedder table of 1000 classes; or an unconditional UNet2DModel) and ``vqvae/``
    (VQModel) or ``vae/`` (AutoencoderKL, with the checkpoint's ``scaling_factor``), x1/2."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet2DModel, VQModel
    from safetensors.torch import save_file
    io = dict(in_channels=latent_channels, out_channels=latent_channels)
    if conditional:
        unet = UNet2DConditionModel(
            **TINY_UNET, **io, down_block_types=('CrossAttnDownBlock2D', ) * 3,
            up_block_types=('CrossAttnUpBlock2D', ) * 3, cross_attention_dim=16,
            attention_head_dim=4)
    else:
        unet = UNet2DModel(
            **TINY_UNET, **io, down_block_types=('DownBlock2D', 'AttnDownBlock2D',
                                                 'AttnDownBlock2D'),
            up_block_types=('AttnUpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'), attention_head_dim=8)
    unet.save_pretrained(osp.join(root, 'unet'))
    stage = dict(in_channels=3, out_channels=3, latent_channels=latent_channels,
                 block_out_channels=(8, 16), norm_num_groups=4, layers_per_block=1,
                 down_block_types=('DownEncoderBlock2D', ) * 2,
                 up_block_types=('UpDecoderBlock2D', ) * 2)
    if first_stage == 'vq':
        VQModel(**stage, num_vq_embeddings=32).save_pretrained(osp.join(root, 'vqvae'))
    else:
        AutoencoderKL(**stage, scaling_factor=scaling_factor).save_pretrained(
            osp.join(root, 'vae'))
    if conditional:
        save_file({'embedding.weight': torch.randn(1000, 16)},
                  osp.join(root, 'class_embedding.safetensors'))


def write_celebamask_hq(root, count=6, size=(40, 40), seed=0):
    """CelebAMask-HQ's layout: CelebA-HQ-img/<i>.jpg, the attribute file (count, 40 names, then
    '<i>.jpg' and +-1 values), the HQ-to-CelebA mapping, and CelebA's list_eval_partition.txt
    (even images train, odd test)."""
    import mmcv
    rng = np.random.default_rng(seed)
    names = ['5_o_Clock_Shadow', 'Male', 'Smiling'] + [f'Attr_{i}' for i in range(37)]
    rows, mapping, partition = [], ['idx orig_idx orig_file'], []
    for i in range(count):
        male = i % 3 == 0
        image = np.full((*size, 3), 200 if male else 60) + rng.integers(-20, 20, (*size, 3))
        mmcv.imwrite(np.clip(image, 0, 255).astype(np.uint8),
                     osp.join(root, 'CelebA-HQ-img', f'{i}.jpg'))
        values = ['-1'] * 40
        values[1] = '1' if male else '-1'
        rows.append(f'{i}.jpg  ' + ' '.join(values))
        mapping.append(f'{i} {1000 + i} {1000 + i:06d}.jpg')
        partition.append(f'{1000 + i:06d}.jpg {0 if i % 2 == 0 else 2}')
    with open(osp.join(root, 'CelebAMask-HQ-attribute-anno.txt'), 'w') as f:
        f.write(f'{count}\n' + ' '.join(names) + '\n' + '\n'.join(rows) + '\n')
    with open(osp.join(root, 'CelebA-HQ-to-CelebA-mapping.txt'), 'w') as f:
        f.write('\n'.join(mapping) + '\n')
    with open(osp.join(root, 'list_eval_partition.txt'), 'w') as f:
        f.write('\n'.join(partition) + '\n')


def write_lsun_churches(root, count=4, seed=0):
    """The exported LSUN images, nested as lsun's export writes them, under the class folder."""
    import mmcv
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
        mmcv.imwrite(image, osp.join(root, 'church_outdoor_train', 'church_outdoor', str(i % 2),
                                     f'{i:040x}.webp'))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tiny(name, tmp_path, extra=None):
    return shrink_generation_config(Config.fromfile(config_path(name)), tmp_path,
                                    {'model.perception.head.in_channels': 32,
                                     'model.perception.backbone.out_indices': (0, 1, 2),
                                     **(extra or {})})


def teacher_options():
    return {'model.posterior.schedule.num_inference_steps': 10, 'model.posterior.burn_in': 2,
            'load_from': None}


def train_then_test(cfg, work_dir, perception_metric='accuracy/top1'):
    runner = build_runner(cfg, str(work_dir))
    runner.train()
    assert math.isfinite(runner.message_hub.get_scalar('train/loss').current())
    metrics = (checked_test_top1(runner, perception_metric)
               if perception_metric == 'accuracy/top1' else checked_test_miou(runner))
    for name in ('fid', 'precision', 'recall'):
        key = f'generation/{name}_mobilenet_v2'
        assert key in metrics and math.isfinite(metrics[key]), (key, metrics)
    return runner, metrics


def test_ldm_configs_have_the_ldm_shapes():
    imagenet = Config.fromfile(config_path('imagenet256_ldm.py'))
    assert imagenet.model.perception.backbone.vae.type == 'VQModel'
    assert imagenet.model.schedule.scheduler.beta_schedule == 'scaled_linear'
    assert imagenet.custom_hooks[0].num_steps == 200
    celeba = Config.fromfile(config_path('celebahq256_ldm.py'))
    assert celeba.custom_hooks[0].classes == [2]  # the null class: unconditional samples
    church = Config.fromfile(config_path('lsun_church256_ldm.py'))
    assert church.model.perception.backbone.vae.type == 'AutoencoderKL'
    assert church.model.schedule.scheduler.beta_end == 0.0155


def test_imagenet256_ldm_trains(in_tmp):
    write_imagenet('data/imagenet')
    write_ldm_checkpoint('checkpoints/ldm-cin256-f8', True, 'vq', 4)
    runner = build_runner(tiny('imagenet256_ldm.py', in_tmp), str(in_tmp / 'work'))
    assert type(runner.model.backbone.vae).__name__ == 'VQModel'
    assert runner.model.backbone.vae.config.scaling_factor == 1.0
    runner.train()
    assert math.isfinite(runner.message_hub.get_scalar('train/genera_loss_diffusion').current())


def test_imagenet256_ldm_genrep_stage2_one_checkpoint_both_tasks(in_tmp):
    write_imagenet('data/imagenet')
    write_ldm_checkpoint('checkpoints/ldm-cin256-f8', True, 'vq', 4)
    cfg = tiny('imagenet256_ldm_genrep_stage2.py', in_tmp, teacher_options())
    train_then_test(cfg, in_tmp / 'work')


def test_celebahq256_ldm_genrep_stage2_one_checkpoint_both_tasks(in_tmp):
    write_celebamask_hq('data/CelebAMask-HQ')
    write_ldm_checkpoint('checkpoints/ldm-celebahq-256', False, 'vq', 3)
    # One (the null) class: 6 samples, what precision / recall at k = 3 need.
    cfg = tiny('celebahq256_ldm_genrep_stage2.py', in_tmp,
               {**teacher_options(), 'custom_hooks.1.samples_per_class': 6})
    runner, _ = train_then_test(cfg, in_tmp / 'work')
    dataset = runner.train_dataloader.dataset
    assert len(dataset) == 3 and dataset.metainfo['classes'] == ('not Male', 'Male')
    assert runner.model.denoiser.model.config.num_class_embeds == 3


def test_lsun_church256_ldm_trains_then_tests(in_tmp):
    write_lsun_churches('data/lsun')
    write_ldm_checkpoint('checkpoints/ldm-lsun-churches-256', False, 'kl', 4)
    cfg = tiny('lsun_church256_ldm.py', in_tmp, {'custom_hooks.0.samples_per_class': 6})
    runner, _ = train_then_test(cfg, in_tmp / 'work')
    assert len(runner.train_dataloader.dataset) == 4
    # the checkpoint's scale (its vae/config.json), not a number in the config
    assert runner.model.backbone.vae.config.scaling_factor == 0.1875

"""The paper's NYUv2 depth configs (configs/genrep/nyuv2_ldm*.py) load, build from a tiny random
Stable-Diffusion-style checkpoint written where they look for it, and run two training iterations
and one test iteration through mmengine's Runner on images in the common NYUv2 layout (split files,
sync/ and official_splits/test/). The test metrics equal a hand computation of delta_1..3, AbsRel,
RMSE and log10 on the eigen crop of the 480 x 640 ground truth."""
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from paper_config_helpers import (NYU_SIZE, NYU_TRAIN_SCENES, build_runner, config_path,
                                  write_nyuv2, write_sd_checkpoint)

TINY_UNET_CHANNELS = (8, 16, 16, 32)
TINY_SIZE_DIVISOR = 16  # the tiny VAE's x2 times the tiny UNet's deepest x8
CROP = 32


@pytest.fixture
def nyu_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test_depths = write_nyuv2('data/nyu')
    write_sd_checkpoint('checkpoints/stable-diffusion-v1-5')
    return tmp_path, test_depths


def load_tiny_depth(name: str, prefix: str, extra=None) -> Config:
    """``configs/genrep/<name>`` with a tiny bins head, 32 px crops, 2 iterations, no workers."""
    cfg = Config.fromfile(config_path(name))
    head = f'{prefix}.decode_head'
    options = {
        f'{head}.in_channels': list(TINY_UNET_CHANNELS),
        f'{head}.channels': 16,
        f'{head}.num_bins': 8,
        f'{head}.num_layers': 1,
        f'{head}.num_heads': 2,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.pipeline.4.crop_size': (CROP, CROP),
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        # The image (not its ground truth, loaded after) shrunk for the test: the tiny UNet's
        # full-resolution attention over a 240 x 320 latent costs minutes; the prediction is
        # resized back to 480 x 640 and scored there, as the config scores it.
        'test_dataloader.dataset.pipeline': [
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(80, 60), keep_ratio=True),
            *cfg.test_dataloader.dataset.pipeline[1:]
        ],
        'train_cfg.max_iters': 2,
        'train_cfg.val_begin': 1000,  # no validation: the test loop is run on its own
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.save_last': False,
        'env_cfg.cudnn_benchmark': False,
    }
    for preprocessor in (f'{prefix}.data_preprocessor', 'data_preprocessor'):
        options[f'{preprocessor}.size'] = (CROP, CROP)
        options[f'{preprocessor}.test_cfg.size_divisor'] = TINY_SIZE_DIVISOR
    options.update(extra or {})
    cfg.merge_from_dict(options)
    return cfg


def hand_depth_metrics(gt: np.ndarray, pred: np.ndarray) -> dict:
    """delta_i, AbsRel, RMSE, log10 over the valid pixels (1 mm < gt < 10 m) of the eigen crop."""
    crop = np.zeros_like(gt, dtype=bool)
    crop[45:471, 41:601] = True
    mask = crop & (gt > 1e-3) & (gt < 10.0)
    g, p = gt[mask], pred[mask]
    ratio = np.maximum(g / p, p / g)
    return dict(d1=(ratio < 1.25).mean(), d2=(ratio < 1.25**2).mean(),
                d3=(ratio < 1.25**3).mean(), abs_rel=(np.abs(p - g) / g).mean(),
                rmse=np.sqrt(((p - g)**2).mean()),
                log10=np.abs(np.log10(p) - np.log10(g)).mean())


def test_nyuv2_ldm_trains_and_its_metrics_equal_a_hand_computation(nyu_workdir):
    tmp_path, test_depths = nyu_workdir
    cfg = load_tiny_depth('nyuv2_ldm.py', 'model')
    runner = build_runner(cfg, str(tmp_path / 'work'))
    model = runner.model
    assert type(model).__name__ == 'DepthEstimator'
    assert type(model.decode_head).__name__ == 'BinsDepthHead'
    assert list(model.backbone.out_channels) == list(TINY_UNET_CHANNELS)
    # The split file lists three pairs, one without ground truth; the scene class is the folder's.
    dataset = runner.train_dataloader.dataset
    assert len(dataset) == 2
    classes = dataset.metainfo['classes']
    assert [dataset.get_data_info(i)['category_id'] for i in range(2)] == [
        classes.index(scene) for _, scene in NYU_TRAIN_SCENES]
    assert runner.test_dataloader.dataset.get_data_info(0)['category_id'] == classes.index(
        'bathroom')

    runner.train()
    assert runner.iter == 2
    assert math.isfinite(runner.message_hub.get_scalar('train/decode.loss_silog').current())
    metrics = runner.test()

    # The same prediction, by the model's own test step, scored by hand on the eigen crop.
    model.eval()
    batch = next(iter(runner.test_dataloader))
    with torch.no_grad():
        sample = model.test_step(batch)[0]
    pred = sample.pred_depth_map.data[0].double().numpy()
    assert pred.shape == NYU_SIZE
    (gt, ) = test_depths.values()
    expected = hand_depth_metrics(gt, pred)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_nyuv2_ldm_genrep_stage1_distils_the_scene_posterior(nyu_workdir):
    """Two iterations with a short chain (the paper's is 75 kept steps x 8 candidate scenes)."""
    tmp_path, _ = nyu_workdir
    extra = {'model.posterior.schedule.num_inference_steps': 10, 'model.posterior.burn_in': 2,
             'model.perception.auxiliary_head.in_channels': TINY_UNET_CHANNELS[-1],
             'custom_hooks': []}  # the teacher every iteration (the shipped one: 1 in 8)
    cfg = load_tiny_depth('nyuv2_ldm_genrep_stage1.py', 'model.perception', extra)
    runner = build_runner(cfg, str(tmp_path / 'work'))
    model = runner.model
    assert type(model.task).__name__ == 'DepthAdapter'
    assert type(model.perception.auxiliary_head).__name__ == 'SceneClassHead'
    assert model.perception.auxiliary_head.num_classes == 27
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith('perception.auxiliary_head.') for n in trainable)
    assert any(n.startswith('perception.decode_head.') for n in trainable)
    assert not any('.resnets.' in n or '.vae.' in n for n in trainable)
    runner.train()
    hub = runner.message_hub
    distil = hub.get_scalar('train/percept_loss_gen_distil').current()
    assert math.isfinite(distil) and distil > 0
    assert math.isfinite(hub.get_scalar('train/percept_aux.loss_cls').current())
    assert set(runner.test()) >= {'d1', 'd2', 'd3', 'abs_rel', 'rmse', 'log10'}


def test_nyuv2_ldm_genrep_stage1_schedule_and_teacher_budget():
    from genrep.registry import POSTERIORS
    cfg = Config.fromfile(config_path('nyuv2_ldm_genrep_stage1.py'))
    posterior = POSTERIORS.build(cfg.model.posterior)
    # the budget of docs/paper_cost.md: 2 calls a class, K = 2 scenes, 8 images, 1 iteration in 8
    assert posterior.num_evaluations() == 2
    assert (cfg.model.num_candidates, cfg.model.distill_images) == (1, 8)
    assert cfg.custom_hooks == [dict(type='genrep.TeacherIntervalHook', interval=8)]
    assert cfg.optim_wrapper.optimizer == dict(type='Adam', lr=1e-4, weight_decay=5e-2)
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.test_evaluator.crop_type == 'nyu_crop'

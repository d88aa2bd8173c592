"""The example plugin, used as a user would: its config (custom_imports) trains GenRep stage 1 for
two iterations with the plugin's head and adapter, and the dense distillation reaches the loss."""
import os.path as osp
import sys

import torch
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG = osp.join(REPO_ROOT, 'projects/example_head/configs/fmnist_patch_genrep_stage1.py')
sys.path.insert(0, osp.join(REPO_ROOT, 'tests'))
if REPO_ROOT not in sys.path:  # what tools/train.py does for the plugin's import
    sys.path.insert(0, REPO_ROOT)


def tiny(cfg, data_root, work_dir):
    """The project's config on a tiny UNet, the main job's teacher at 4 timesteps and the fixture
    data."""
    tiny_stage1 = Config.fromfile(
        osp.join(REPO_ROOT, 'tests/data/configs/fmnist_genrep_tiny_stage1.py'))
    # the tiny UNet in place of the shipped denoiser that the main job's stage 1 reads
    cfg.model.perception.backbone.denoiser = tiny_stage1.model.perception.backbone.denoiser
    cfg.merge_from_dict({
        'model.perception.head.in_channels': 32,
        'model.posterior.schedule.num_inference_steps': 4,
        'model.distill_images': 2,
        'load_from': None,
        'param_scheduler': [],
        'train_cfg.val_interval': 10,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.save_best': None,
        'work_dir': str(work_dir),
    })
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=4, num_workers=0, persistent_workers=False)
        cfg[loader].dataset.data_root = str(data_root)
    return cfg


def test_the_plugin_trains_genrep_with_dense_distillation(tmp_path):
    from data_fixtures import write_fashion_mnist
    from mmengine.runner import Runner

    from genrep.registry import TASK_ADAPTERS

    data = write_fashion_mnist(tmp_path / 'data', num_train=8, num_test=4)
    cfg = tiny(Config.fromfile(CONFIG), data, tmp_path / 'work')
    # custom_imports ran when the config was read: the plugin's adapter is registered.
    assert TASK_ADAPTERS.get('PatchClassificationAdapter') is not None
    runner = Runner.from_cfg(cfg)
    model = runner.model
    assert type(model.task).__name__ == 'PatchClassificationAdapter'
    assert type(model.perception.head).__name__ == 'PatchClsHead'

    batch = next(iter(runner.train_dataloader))
    data_batch = model.data_preprocessor(batch, True)
    out = model.task.forward_train(model.perception, data_batch['inputs'],
                                   data_batch['data_samples'], with_scores=True)
    assert out.scores.granularity == 'dense' and out.scores.logits.shape == (4, 10, 4, 4)
    losses = model.loss(data_batch['inputs'], data_batch['data_samples'])
    distil = losses['percept'].gen_distil
    assert torch.isfinite(distil) and distil > 0

    runner.train()
    ckpt = torch.load(tmp_path / 'work' / 'epoch_1.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 2
    logs = (tmp_path / 'work').glob('*/vis_data/scalars.json')
    text = ''.join(path.read_text() for path in logs)
    assert 'percept_loss_gen_distil' in text

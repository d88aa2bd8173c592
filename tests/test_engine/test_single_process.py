"""A config written for a cluster runs on one process: its SyncBN layers become BatchNorm with a
log line (mmengine's Runner does it for tools/train.py and tools/test.py, genrep.apis.init_model
for the inferencers and analysis tools), and a missing local weights directory or file fails
before anything is built, in one line naming the config key and the path."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch import nn

from conftest import REPO_ROOT, logged_messages
from genrep.apis import init_model
from genrep.engine.config_checks import check_local_weights
from genrep.registry import MODELS

SEG_CONFIG = osp.join(REPO_ROOT, 'configs/genrep/scenes_seg_unet.py')


def with_syncbn(cfg):
    cfg.model.decode_head.norm_cfg = dict(type='SyncBN', requires_grad=True)
    return cfg


def batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_the_runner_of_a_single_process_has_no_syncbn(tmp_path):
    cfg = with_syncbn(Config.fromfile(SEG_CONFIG))
    runner = Runner(model=cfg.model, work_dir=str(tmp_path), default_scope='mmseg',
                    experiment_name='syncbn_runner')
    layers = batchnorms(runner.model)
    assert len(layers) == 4  # the semantic FPN head's ConvModules
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in layers)
    log = open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]).read()
    assert 'all SyncBatchNorm (SyncBN) layers in the model will be automatically reverted' in log


def test_init_model_reverts_syncbn_and_says_so(tmp_path):
    cfg = with_syncbn(Config.fromfile(SEG_CONFIG))
    # A SyncBN checkpoint (as a cluster run saves it) with statistics of its own.
    init_default_scope('mmseg')
    trained = MODELS.build(cfg.model)
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in trained.modules()) == 4
    with torch.no_grad():
        for layer in batchnorms(trained):
            layer.running_mean.uniform_(-1, 1)
    checkpoint = tmp_path / 'syncbn.pth'
    torch.save({'state_dict': trained.state_dict()}, checkpoint)

    with logged_messages() as messages:
        model = init_model(cfg, str(checkpoint))
    assert ('single process: 4 SyncBN layers converted to BatchNorm '
            '(mmengine revert_sync_batchnorm)') in messages
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    layers = batchnorms(model)
    assert len(layers) == 4
    for loaded, saved in zip(layers, batchnorms(trained)):
        assert torch.equal(loaded.running_mean, saved.running_mean)
    assert model(torch.randn(1, 3, 64, 64), mode='tensor').shape == (1, 17, 32, 32)


def test_missing_local_weights_are_named_by_key_and_path(tmp_path):
    weights = tmp_path / 'sd'
    (weights / 'unet').mkdir(parents=True)
    (tmp_path / 'r50.pth').write_bytes(b'')
    cfg = Config(dict(model=dict(
        backbone=dict(
            denoiser=dict(pretrained=str(weights), subfolder='unet'),
            vae=dict(pretrained=str(weights), subfolder='vae'),
            init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
        neck=dict(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'r50.pth'))),
        head=dict(text_encoder=dict(model_dir=str(tmp_path / 'clip'))))))
    with pytest.raises(FileNotFoundError) as error:
        check_local_weights(cfg, 'cfg.py')
    assert str(error.value).startswith(
        f"cfg.py: model.backbone.vae.pretrained: '{weights / 'vae'}' does not exist")
    (weights / 'vae').mkdir()
    with pytest.raises(FileNotFoundError, match=r"^cfg.py: model.head.text_encoder.model_dir: '"):
        check_local_weights(cfg, 'cfg.py')
    (tmp_path / 'clip').mkdir()
    check_local_weights(cfg, 'cfg.py')  # remote checkpoints are mmengine's to fetch


@pytest.mark.slow  # a tools/train.py process: 20-55 s of imports on 2 shared cores
def test_train_tool_stops_in_one_line_before_building(repo_root, tmp_path):
    from test_tools import last_line, run_tool
    proc = run_tool(repo_root, 'train.py', 'configs/genrep/ade20k_ldm.py', '--work-dir',
                    str(tmp_path), '--cfg-options', f'model.backbone.vae.pretrained={tmp_path}')
    assert proc.returncode != 0
    assert last_line(proc) == (
        f"FileNotFoundError: configs/genrep/ade20k_ldm.py: model.backbone.vae.pretrained: "
        f"'{tmp_path / 'vae'}' does not exist (local weights: save the checkpoint there, e.g. "
        "with save_pretrained, or set the key to its path)")

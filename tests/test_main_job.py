"""The main job's real pipeline on the real Debian Fashion-MNIST, shortened: marked slow (about two
minutes on 2 cores), run by `make test-slow` and CI."""
import os.path as osp
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

DEBIAN_ROOT = '/usr/share/datasets/fashion-mnist'


@pytest.mark.slow
@pytest.mark.skipif(not osp.isdir(DEBIAN_ROOT), reason=f'{DEBIAN_ROOT} absent')
def test_main_config_learns_fashion_mnist(tmp_path):
    """200 iterations of the main config on 25,600 real training images reach well above chance
    (10%) on 2,000 real test images; then tools/test.py reproduces the number from the checkpoint."""
    config = 'configs/genrep/fmnist_unet_cls.py'
    options = [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'train_dataloader.dataset.indices=25600', 'val_dataloader.dataset.indices=2000',
        'test_dataloader.dataset.indices=2000',
        'param_scheduler.1.end=1'
    ]
    train = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path),
                            '--cfg-options', *options],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]
    val = re.findall(r'accuracy/top1: ([\d.]+)', train.stdout + train.stderr)
    assert val and float(val[-1]) > 60.0, val

    ckpt = (tmp_path / 'last_checkpoint').read_text().strip()
    test = subprocess.run([sys.executable, 'tools/test.py', config, ckpt, '--work-dir',
                           str(tmp_path / 'test'), '--cfg-options', *options],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    tested = re.findall(r'accuracy/top1: ([\d.]+)', test.stdout + test.stderr)
    assert tested and tested[-1] == val[-1]

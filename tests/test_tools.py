"""tools/train.py and tools/test.py as a user runs them: a 2-iteration training, --resume, test, and
bad input that must end in one clear line."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from data_fixtures import write_fashion_mnist


TINY_CONFIG = 'tests/data/configs/fmnist_tiny.py'


def run_tool(repo_root, tool, *args):
    return subprocess.run([sys.executable, f'tools/{tool}', *args],
                          cwd=repo_root,
                          capture_output=True,
                          text=True,
                          timeout=600)


def data_options(root):
    return [f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def last_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ''


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Two iterations (8 images, batch 4) of tools/train.py, then --resume for a second epoch."""
    from conftest import REPO_ROOT
    tmp = tmp_path_factory.mktemp('train')
    data = write_fashion_mnist(tmp / 'data', num_train=8, num_test=8)
    work_dir = tmp / 'work'
    first = run_tool(REPO_ROOT, 'train.py', TINY_CONFIG, '--work-dir', str(work_dir),
                     '--cfg-options', *data_options(data))
    assert first.returncode == 0, first.stderr[-3000:]
    first_ckpt = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=True)
    resumed = run_tool(REPO_ROOT, 'train.py', TINY_CONFIG, '--work-dir', str(work_dir), '--resume',
                       '--cfg-options', *data_options(data), 'train_cfg.max_epochs=2')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return dict(data=data, work_dir=work_dir, first=first, resumed=resumed, first_ckpt=first_ckpt)


def test_two_iterations_then_resume(trained):
    work_dir = trained['work_dir']
    assert trained['first_ckpt']['meta']['iter'] == 2
    assert trained['first_ckpt']['meta']['epoch'] == 1
    log = trained['resumed'].stdout + trained['resumed'].stderr
    assert 'resumed epoch: 1, iter: 2' in log, log[-3000:]
    second = torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=True)
    assert second['meta']['epoch'] == 2 and second['meta']['iter'] == 4
    # The resumed run started from the first run's weights, not from a fresh initialisation.
    key = 'head.fc.weight'
    assert not torch.equal(second['state_dict'][key], trained['first_ckpt']['state_dict'][key])
    assert 'Epoch(train) [2][2/2]' in log
    assert 'Epoch(train) [1]' not in log


def test_test_tool_evaluates_the_checkpoint(trained, repo_root, tmp_path):
    ckpt = trained['work_dir'] / 'epoch_2.pth'
    out = tmp_path / 'preds.pkl'
    proc = run_tool(repo_root, 'test.py', TINY_CONFIG, str(ckpt), '--work-dir', str(tmp_path),
                    '--out', str(out), '--cfg-options', *data_options(trained['data']))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'accuracy/top1' in proc.stdout + proc.stderr
    import pickle
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8 and 'pred_score' in preds[0]


def test_missing_dataset_is_one_clear_line(repo_root, tmp_path):
    missing = tmp_path / 'nowhere'
    proc = run_tool(repo_root, 'train.py', TINY_CONFIG, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *data_options(missing))
    assert proc.returncode != 0
    line = last_line(proc)
    assert 'FileNotFoundError' in line and str(missing) in line, line
    assert 'apt-get install dataset-fashion-mnist' in line, line


def test_truncated_idx_file_is_one_clear_line(repo_root, tmp_path):
    data = write_fashion_mnist(tmp_path / 'data', suffix='')
    images = data / 'train-images-idx3-ubyte'
    images.write_bytes(images.read_bytes()[:-100])
    proc = run_tool(repo_root, 'train.py', TINY_CONFIG, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *data_options(data))
    assert proc.returncode != 0
    line = last_line(proc)
    assert str(images) in line and 'truncated' in line, line


def test_unknown_config_key_is_one_clear_line(repo_root, tmp_path):
    data = write_fashion_mnist(tmp_path / 'data')
    proc = run_tool(repo_root, 'train.py', TINY_CONFIG, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *data_options(data), 'model.backbone.not_a_key=1')
    assert proc.returncode != 0
    line = last_line(proc)
    assert 'not_a_key' in line and 'DiffusionBackbone' in line, line
    assert not osp.exists(tmp_path / 'w' / 'epoch_1.pth')


def test_missing_checkpoint_is_one_clear_line(repo_root, tmp_path):
    proc = run_tool(repo_root, 'test.py', TINY_CONFIG, str(tmp_path / 'none.pth'))
    assert proc.returncode != 0
    line = last_line(proc)
    assert 'FileNotFoundError' in line and 'none.pth' in line, line


def test_genrep_stage1_then_stage2(repo_root, tmp_path):
    """Stage 1 (perception + distillation) trains 2 iterations; stage 2 loads it and trains jointly
    with gradient alignment, logging the gradient cosine, and fills its semantic EMA denoiser."""
    data = write_fashion_mnist(tmp_path / 'data', num_train=8, num_test=8)
    stage1 = run_tool(repo_root, 'train.py', 'tests/data/configs/fmnist_genrep_tiny_stage1.py',
                      '--work-dir', str(tmp_path / 's1'), '--cfg-options', *data_options(data))
    assert stage1.returncode == 0, stage1.stderr[-3000:]
    assert 'loss_gen_distil' in stage1.stdout + stage1.stderr
    stage2 = run_tool(repo_root, 'train.py', 'tests/data/configs/fmnist_genrep_tiny_stage2.py',
                      '--work-dir', str(tmp_path / 's2'), '--cfg-options', *data_options(data),
                      f'load_from={tmp_path / "s1" / "epoch_1.pth"}')
    assert stage2.returncode == 0, stage2.stderr[-3000:]
    log = stage2.stdout + stage2.stderr
    for key in ('grad_cos_sim', 'grad_alpha', 'loss_percept', 'loss_genera', 'loss_rep_align'):
        assert key in log, key
    ckpt = torch.load(tmp_path / 's2' / 'epoch_1.pth', map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    assert bool(state['semantic_initialized'])
    first = torch.load(tmp_path / 's1' / 'epoch_1.pth', map_location='cpu', weights_only=True)
    key = 'perception.backbone.denoiser.model.conv_in.weight'
    assert not torch.equal(state[key], first['state_dict'][key])

    # The same checkpoint draws class-conditional samples (tools/sample.py).
    grid = tmp_path / 'samples' / 'grid.png'
    sample = run_tool(repo_root, 'sample.py', 'tests/data/configs/fmnist_genrep_tiny_stage2.py',
                      str(tmp_path / 's2' / 'epoch_1.pth'), '--out', str(grid), '--per-class',
                      '2', '--steps', '3', '--classes', '1', '4', '7')
    assert sample.returncode == 0, sample.stderr[-3000:]
    from PIL import Image
    assert Image.open(grid).size == (3 * 32, 2 * 32)
    import numpy as np
    drawn = np.load(tmp_path / 'samples' / 'grid.npz')
    assert drawn['labels'].tolist() == [1, 1, 4, 4, 7, 7]
    assert drawn['images'].shape == (6, 1, 32, 32) and np.isfinite(drawn['images']).all()

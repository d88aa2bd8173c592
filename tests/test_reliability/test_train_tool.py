"""tools/train.py and tools/test.py on bad input, on retries and across processes.

Bad input is fed to the tools' own ``main`` in this process (they fail before any Runner is
built, so no subprocess start-up is paid): each ends in one exception whose message names the
config file and key, or the checkpoint file. Runs that train use subprocesses, as a user does.
"""
import os
import os.path as osp
import signal
import socket
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT, load_tool, output_tail
from data_fixtures import write_fashion_mnist

from genrep.engine.checkpoints import CheckpointError
from genrep.engine.config_checks import ConfigError

TINY = 'tests/data/configs/fmnist_tiny.py'


def data_options(root):
    return [f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def run_main(monkeypatch, tool, *argv):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setattr(sys, 'argv', [f'tools/{tool}.py', *map(str, argv)])
    load_tool(f'tools/{tool}.py').main()


def run_tool(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_fashion_mnist(tmp_path_factory.mktemp('data'), num_train=8, num_test=8)


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A checkpoint of the tiny config's model at its initial weights (no training needed)."""
    from genrep.apis import init_model
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('weights') / 'initial.pth'
    torch.save({'state_dict': init_model(osp.join(REPO_ROOT, TINY)).state_dict()}, path)
    return path


def damaged_copy(source, path, keep=0.5):
    data = source.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


# One line naming the key and the config file.

@pytest.mark.parametrize('option, expected', [
    ('model.head.num_classes=5',
     'model.head.num_classes=5 but train_dataloader.dataset (FashionMNIST) has 10 classes'),
    ('data_preprocessor.num_classes=7', 'data_preprocessor.num_classes=7 but'),
    ('default_hooks.checkpoint.intervall=1',
     "default_hooks.checkpoint.intervall: CheckpointHook has no argument 'intervall'"),
    ('default_hooks.logger.intervall=1',
     "default_hooks.logger.intervall: LoggerHook has no argument 'intervall'"),
    ('default_hooks.checkpoint.type=NoSuchHook',
     "default_hooks.checkpoint.type='NoSuchHook' is not a registered hook"),
])
def test_config_error_names_key_and_file(monkeypatch, tmp_path, data, option, expected):
    with pytest.raises(ConfigError) as error:
        run_main(monkeypatch, 'train', TINY, '--work-dir', tmp_path, '--cfg-options',
                 *data_options(data), option)
    message = str(error.value)
    assert message.startswith(f'{TINY}: ') and expected in message, message
    assert '\n' not in message
    assert not list(tmp_path.iterdir())  # refused before the Runner made its work dir


def test_test_tool_checks_class_counts(monkeypatch, weights, data):
    with pytest.raises(ConfigError, match=f'^{TINY}: model.head.num_classes=3 but'):
        run_main(monkeypatch, 'test', TINY, weights, '--cfg-options', *data_options(data),
                 'model.head.num_classes=3')


# Checkpoint errors name the file.

def test_damaged_checkpoints_are_named(monkeypatch, tmp_path, weights, data):
    truncated = damaged_copy(weights, tmp_path / 'truncated.pth')
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'hook': os.system}, evil)
    cases = [
        (truncated, 'train', TINY, '--work-dir', tmp_path / 'a', '--cfg-options',
         *data_options(data), f'load_from={truncated}'),
        (truncated, 'train', TINY, '--work-dir', tmp_path / 'b', '--resume', truncated,
         '--cfg-options', *data_options(data)),
        (evil, 'train', TINY, '--work-dir', tmp_path / 'c', '--cfg-options', *data_options(data),
         f'load_from={evil}'),
        (truncated, 'test', TINY, truncated, '--cfg-options', *data_options(data)),
        (evil, 'test', TINY, evil, '--cfg-options', *data_options(data)),
    ]
    for bad, tool, *argv in cases:
        with pytest.raises(CheckpointError) as error:
            run_main(monkeypatch, tool, *argv)
        assert f'checkpoint {bad} cannot be read' in str(error.value), (argv, str(error.value))
    assert 'UnpicklingError' in str(error.value)  # the refused global, not a crash


# Retries.

def test_rerun_into_a_work_dir_with_checkpoints_is_refused(monkeypatch, tmp_path, weights,
                                                           data):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'epoch_1.pth').write_bytes(weights.read_bytes())
    (work_dir / 'last_checkpoint').write_text('epoch_1.pth')
    with pytest.raises(FileExistsError, match=r'already holds checkpoints \(epoch_1.pth\); '
                                              r'pass --resume .* or --overwrite'):
        run_main(monkeypatch, 'train', TINY, '--work-dir', work_dir, '--cfg-options',
                 *data_options(data))
    assert (work_dir / 'last_checkpoint').read_text() == 'epoch_1.pth'
    assert sorted(p.name for p in work_dir.iterdir()) == ['epoch_1.pth', 'last_checkpoint']


def test_resume_with_nothing_to_resume_keeps_load_from(tmp_path, weights):
    from mmengine.config import Config

    from genrep.engine.runner_utils import resolve_start
    cfg = Config(dict(work_dir=str(tmp_path / 'empty'), load_from=str(weights), resume=False))
    resolve_start(cfg, 'auto', overwrite=False)
    assert cfg.resume is False and cfg.load_from == str(weights)


@pytest.mark.slow
def test_resume_with_nothing_to_resume_starts_from_load_from(tmp_path, weights, data):
    """The retry of a killed first stage keeps the weights its config loads (issue 11: they were
    dropped and the run started from random weights)."""
    checkpoint = weights
    proc = run_tool('tools/train.py', TINY, '--work-dir', tmp_path / 'retry', '--resume',
                    '--cfg-options', *data_options(data), f'load_from={checkpoint}')
    assert proc.returncode == 0, output_tail(proc)
    log = proc.stdout + proc.stderr
    assert f'holds no checkpoint to resume from; starting from load_from={checkpoint}' in log
    assert f'Load checkpoint from {checkpoint}' in log
    retried = torch.load(tmp_path / 'retry' / 'epoch_1.pth', weights_only=True)
    assert retried['meta']['iter'] == 2  # a new run (from the loaded weights), not a resume


def test_infinite_learning_rate_fails_without_writing_a_checkpoint(tmp_path, data):
    work_dir = tmp_path / 'nan'
    proc = run_tool('tools/train.py', TINY, '--work-dir', work_dir, '--cfg-options',
                    *data_options(data), 'optim_wrapper.optimizer.lr=inf')
    assert proc.returncode != 0
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith('FloatingPointError: the optimizer step of iteration 1 made'), last
    assert 'learning rate [inf]' in last
    assert not list(work_dir.glob('*.pth')) and not (work_dir / 'last_checkpoint').exists()


# The real kill and the real launcher (slow: several tool start-ups each).

KILL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAfterIteration(Hook):
    priority = 'LOWEST'  # after the checkpoint of that iteration, if any

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    """24 images, batch 4: 6 iterations an epoch, 2 epochs, validated after each, RandomFlip on,
    a checkpoint every 2 iterations. SIGKILL after iteration 9 (epoch 2; iter_8.pth is the newest
    checkpoint, iteration 9 is lost and trained again). The resumed run's final weights, optimizer
    state and scheduler equal the uninterrupted run's exactly (torch.equal)."""
    data = write_fashion_mnist(tmp_path / 'data', num_train=24, num_test=8)
    (tmp_path / 'kill_hook.py').write_text(KILL_HOOK)
    killing = tmp_path / 'killing.py'
    killing.write_text(f"_base_ = ['{osp.join(REPO_ROOT, TINY)}']\n"
                       "custom_imports = dict(imports=['genrep', 'kill_hook'])\n"
                       "custom_hooks = [dict(type='KillAfterIteration', iteration=9)]\n")
    options = ['--cfg-options', *data_options(data), 'train_cfg.max_epochs=2',
               'default_hooks.checkpoint.iter_interval=2']
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    whole = run_tool('tools/train.py', TINY, '--work-dir', tmp_path / 'whole', *options)
    assert whole.returncode == 0, output_tail(whole)
    killed = run_tool('tools/train.py', killing, '--work-dir', tmp_path / 'run', *options, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (tmp_path / 'run' / 'last_checkpoint').read_text() == 'iter_8.pth'
    resumed = run_tool('tools/train.py', TINY, '--work-dir', tmp_path / 'run', '--resume',
                       *options)
    assert resumed.returncode == 0, output_tail(resumed)
    assert 'skipping its first 2 of 6 batches' in resumed.stdout + resumed.stderr
    expected = torch.load(tmp_path / 'whole' / 'epoch_2.pth', weights_only=True)
    got = torch.load(tmp_path / 'run' / 'epoch_2.pth', weights_only=True)
    assert got['meta']['iter'] == expected['meta']['iter'] == 12
    for key, value in expected['state_dict'].items():
        assert torch.equal(got['state_dict'][key], value), key
    for index, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(got['optimizer']['state'][index][name]),
                               torch.as_tensor(value)), (index, name)
    assert got['param_schedulers'] == expected['param_schedulers']


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_dist_train_two_processes_equals_one(tmp_path):
    """tools/dist_train.sh CFG 2 on CPU (gloo, chosen by genrep.compat) with batch 4 a process
    equals one process with batch 8: 24 images, 3 SGD steps with momentum. The sampler gives rank r
    the images r, r + 2, ... of the batch of 8, and DDP averages the gradients; only the order of
    floating-point sums differs (measured: max |diff| 1.5e-8). Augmentation is off: each rank draws
    its own flips, so the images would differ."""
    data = write_fashion_mnist(tmp_path / 'data', num_train=24, num_test=8)
    config = tmp_path / 'no_flip.py'
    config.write_text(f"_base_ = ['{osp.join(REPO_ROOT, TINY)}']\n"
                      'train_dataloader = dict(dataset=dict(pipeline=['
                      "dict(type='mmcv.Pad', size=(32, 32), pad_val=0), "
                      "dict(type='PackInputs')]))\n")
    options = [*data_options(data), 'optim_wrapper.optimizer.type=SGD',
               'optim_wrapper.optimizer.lr=0.05', 'optim_wrapper.optimizer.momentum=0.9']
    env = dict(os.environ, PORT=str(free_port()))
    two = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
                          str(tmp_path / 'two'), '--cfg-options', *options], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=600, env=env)
    assert two.returncode == 0, output_tail(two)
    assert "uses the 'gloo' backend" in two.stderr
    one = run_tool('tools/train.py', config, '--work-dir', tmp_path / 'one', '--cfg-options',
                   *options, 'train_dataloader.batch_size=8')
    assert one.returncode == 0, output_tail(one)
    first = torch.load(tmp_path / 'two' / 'epoch_1.pth', weights_only=True)
    second = torch.load(tmp_path / 'one' / 'epoch_1.pth', weights_only=True)
    assert first['meta']['iter'] == second['meta']['iter'] == 3
    assert len(first['random_states']) == 2  # both ranks' states, gathered before rank 0 saved
    for key, value in second['state_dict'].items():
        torch.testing.assert_close(first['state_dict'][key], value, rtol=0, atol=1e-6, msg=key)


def test_overwrite_allows_the_rerun_and_drops_the_old_pointer(tmp_path, weights):
    from mmengine.config import Config

    from genrep.engine.runner_utils import resolve_start
    (tmp_path / 'epoch_1.pth').write_bytes(weights.read_bytes())
    (tmp_path / 'last_checkpoint').write_text('epoch_1.pth')
    cfg = Config(dict(work_dir=str(tmp_path), load_from=None, resume=False))
    resolve_start(cfg, None, overwrite=True)
    assert cfg.resume is False and cfg.load_from is None
    assert not (tmp_path / 'last_checkpoint').exists()  # a later --resume cannot pick the old run
    (tmp_path / 'last_checkpoint').write_text('epoch_1.pth')
    resolve_start(cfg, 'auto', overwrite=False)
    assert cfg.resume is True and cfg.load_from == str(tmp_path / 'epoch_1.pth')

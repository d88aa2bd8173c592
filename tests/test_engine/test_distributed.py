"""Multi-process launch on machines without CUDA: genrep.compat's fix of mmengine's launchers, and
the launcher scripts' command lines (the 2-process training itself is
tests/test_reliability/test_train_tool.py::test_dist_train_two_processes_equals_one, slow)."""
import os
import socket
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist
from conftest import REPO_ROOT

from genrep import compat

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason='the fix is for CPU machines')


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def single_process_env(port):
    return dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                MASTER_PORT=str(port))


LAUNCH = '''
import os
os.environ.update({env!r})
{imports}
from mmengine.dist import utils
utils.{launcher}('nccl')
import torch.distributed as dist
print('backend', dist.get_backend())
dist.destroy_process_group()
'''


def run_python(code):
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


SLURM_ENV = dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_NODELIST='localhost',
                 SLURM_LOCALID='0', MASTER_ADDR='127.0.0.1')


@needs_no_cuda
@pytest.mark.parametrize('launcher, env', [('_init_dist_pytorch', None),
                                           ('_init_dist_slurm', SLURM_ENV)])
def test_mmengine_launchers_fail_without_fix(launcher, env):
    env = env or single_process_env(free_port())
    if launcher == '_init_dist_slurm':
        env = dict(env, MASTER_PORT=str(free_port()))
    result = run_python(LAUNCH.format(env=env, imports='', launcher=launcher))
    assert result.returncode != 0
    assert '_cuda_setDevice' in result.stderr or 'CUDA' in result.stderr, result.stderr[-2000:]


@needs_no_cuda
@pytest.mark.parametrize('launcher, env', [('_init_dist_pytorch', None),
                                           ('_init_dist_slurm', SLURM_ENV)])
def test_mmengine_launchers_start_gloo_with_fix(launcher, env):
    env = env or single_process_env(free_port())
    if launcher == '_init_dist_slurm':
        env = dict(env, MASTER_PORT=str(free_port()))
    result = run_python(LAUNCH.format(env=env, imports='import genrep', launcher=launcher))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == 'gloo'
    assert "uses the 'gloo' backend instead of the 'nccl'" in result.stderr


def test_fix_changes_only_mmengine_dist_utils():
    from mmengine.dist import utils
    outcome = compat.let_mmengine_launchers_run_without_cuda()
    if torch.cuda.is_available():
        assert outcome == 'not-needed'
        return
    assert outcome == 'already-patched'  # applied when genrep was imported
    assert isinstance(utils.torch, compat._TorchWithoutCudaDevices)
    assert torch.cuda.set_device is not utils.torch.cuda.set_device  # torch itself is unchanged
    assert utils.torch.nn is torch.nn and utils.torch_dist.ReduceOp is dist.ReduceOp


def fake_command(tmp_path, name):
    """A ``name`` on PATH that prints its arguments and environment of interest, one a line."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\necho "PYTHONPATH=$PYTHONPATH"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}')


def test_slurm_scripts_as_mmseg(tmp_path):
    env = fake_command(tmp_path, 'srun')
    env.update(GPUS='16', GPUS_PER_NODE='8')
    train = subprocess.run(['bash', 'tools/slurm_train.sh', 'gpu', 'stage1', 'configs/x.py',
                            '--resume'], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    args = train.stdout.splitlines()
    assert train.returncode == 0, train.stderr
    for expected in ('--partition=gpu', '--job-name=stage1', '--gres=gpu:8', '--ntasks=16',
                     '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1',
                     'configs/x.py', '--launcher=slurm', '--resume'):
        assert expected in args, (expected, args)
    assert any(a.endswith('tools/train.py') for a in args)
    test = subprocess.run(['bash', 'tools/slurm_test.sh', 'gpu', 'eval', 'configs/x.py',
                           'work/epoch_1.pth', '--out', 'p.pkl'], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)
    args = test.stdout.splitlines()
    assert test.returncode == 0, test.stderr
    assert any(a.endswith('tools/test.py') for a in args)
    position = args.index('configs/x.py')
    expected = ['work/epoch_1.pth', '--launcher=slurm', '--out', 'p.pkl']
    assert args[position + 1:position + 5] == expected


def test_dist_scripts_pass_multi_node_flags(tmp_path):
    env = fake_command(tmp_path, 'fakepython')
    env.update(PYTHON='fakepython', NNODES='2', NODE_RANK='1', MASTER_ADDR='10.0.0.7',
               PORT='29611')
    train = subprocess.run(['bash', 'tools/dist_train.sh', 'configs/x.py', '4', '--amp'],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    args = train.stdout.splitlines()
    assert args[:8] == ['-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
                        '--master_addr=10.0.0.7', '--nproc_per_node=4', '--master_port=29611',
                        args[7]] and args[7].endswith('tools/train.py')
    assert args[8:11] == ['configs/x.py', '--launcher', 'pytorch'] and '--amp' in args
    test = subprocess.run(['bash', 'tools/dist_test.sh', 'configs/x.py', 'w/e.pth', '2'],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    args = test.stdout.splitlines()
    assert '--nproc_per_node=2' in args and args[7].endswith('tools/test.py')
    assert args[8:12] == ['configs/x.py', 'w/e.pth', '--launcher', 'pytorch']


CLOSE = '''
import os
os.environ.update({env!r})
import torch.distributed as dist
from genrep.engine.process_group import close_process_group
close_process_group()  # no group yet: nothing to do
dist.init_process_group('gloo')
print('initialized', dist.is_initialized())
close_process_group()
print('closed', not dist.is_initialized())
'''


def test_close_process_group_destroys_the_default_group():
    """What tools/train.py and tools/test.py call after the run: without a group it does nothing,
    with one it destroys it (PyTorch's ask; left to interpreter exit a gloo rank can abort)."""
    result = run_python(CLOSE.format(env=single_process_env(free_port())))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['initialized', 'True', 'closed', 'True']

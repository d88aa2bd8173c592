"""Chaos: tiny runs SIGKILLed at seeded random moments, including in the middle of a checkpoint's
bytes, each time resumed as ``--resume`` does (the newest readable checkpoint of the work dir), end
at the uninterrupted run's weights (max |dW| <= 1e-6; measured: 0).

- One process (perception, with a persistent data worker; GenRep stage 2): each attempt trains in
  a fresh Python process (this file run as a script; a forked child of pytest can hang in its
  first OpenMP region once the parent has run torch), which dies by SIGKILL at its kill point: a
  moment drawn in wall time after its imports, as a fraction of the uninterrupted run's measured
  time, so that it falls inside the run on a fast machine as on a loaded one (the parent's
  SIGKILL: during start-up, a step or a save), after a drawn iteration, or halfway through
  writing a drawn checkpoint (the child's os.write kills the process after half the bytes).
- Two processes through tools/dist_train.sh (CPU, gloo): the launcher (the script, torchrun) and
  rank 0 are killed as a node failure kills them, after a drawn iteration.

After each kill, every file under a checkpoint's name reads back. (An attempt that reaches the
run's end before its kill point ends the series; at least two kills are required.)
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT, output_tail
from data_fixtures import write_fashion_mnist
from tiny_runs import (EPOCHS, PERCEPTION, STAGE2, TOTAL, final_weights, max_abs_diff,
                       tiny_options, train)

WORKER = {'train_dataloader.num_workers': 1, 'train_dataloader.persistent_workers': True}


def kill_plan(seed, kills=3):
    """``kills`` kill points, drawn with ``seed``: ('time', f: after the fraction f of the
    uninterrupted run's time, counted from the attempt's imports), ('iteration', n: after the
    n-th iteration the attempt trains) or ('write', n: halfway through the n-th checkpoint file
    the attempt writes)."""
    rng = random.Random(seed)
    plan = []
    for _ in range(kills):
        kind = rng.choice(['time', 'iteration', 'write'])
        plan.append((kind, round(rng.uniform(0.1, 0.6), 2) if kind == 'time' else
                     rng.randint(1, 2)))
    return plan


def attempt(config, data, work_dir, options, kill):
    """Train with --resume semantics in this process, dying at ``kill`` (None: never)."""
    from mmengine.hooks import Hook
    kind, value = kill or (None, None)
    if kind == 'write':
        real_write, files = os.write, [0]

        def write(fd, data_bytes):
            if len(data_bytes) > 16384:  # a checkpoint's bytes, not last_checkpoint's name
                files[0] += 1
                if files[0] == value:
                    real_write(fd, bytes(data_bytes)[:len(data_bytes) // 2])
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_write(fd, data_bytes)

        os.write = write
    hooks = []
    if kind == 'iteration':

        class KillAfter(Hook):
            priority = 'LOWEST'  # after the iteration's checkpoint

            def before_train(self, runner):
                self.target = runner.iter + value  # the resumed iteration + value

            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                if runner.iter + 1 == self.target:
                    os.kill(os.getpid(), signal.SIGKILL)

        hooks.append(KillAfter())
    from mmengine.runner import Runner

    from tiny_runs import tiny_cfg
    cfg = tiny_cfg(config, data, work_dir, resume_from='auto', options=options)
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    runner.train()


def in_child(mode, config, data, work_dir, options, kill=None, kill_after=None):
    """Run this file as a script in a fresh Python process: ``mode`` 'whole' trains without
    resuming, 'attempt' is :func:`attempt`. SIGKILL it ``kill_after`` seconds after its imports
    (the line READY); return its exit code (negative: the signal) and its seconds from READY to
    its end."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(
        [os.path.dirname(here), here, os.environ.get('PYTHONPATH', '')]))
    args = json.dumps([mode, config, str(data), str(work_dir), options, kill])
    log = f'{work_dir}.{mode}.{time.time_ns()}.log'  # a file: a full pipe would stall the child
    with open(log, 'w') as out:
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), args], cwd=REPO_ROOT,
                                 env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while child.poll() is None and 'READY' not in open(log).read(4096):
        if time.time() > deadline:
            break
        time.sleep(0.01)  # the imports take seconds: the kill time counts from READY
    ready = time.time()
    try:
        child.wait(timeout=kill_after if kill_after is not None else 600)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    if child.returncode not in (0, -signal.SIGKILL):
        print(open(log).read()[-6000:])
    return child.returncode, time.time() - ready


@pytest.mark.slow
@pytest.mark.parametrize('config, options, seed', [(PERCEPTION, WORKER, 25), (STAGE2, None, 52)],
                         ids=['perception', 'genrep_stage2'])
def test_sigkill_at_random_moments_then_resume_ends_at_the_uninterrupted_weights(
        tmp_path, config, options, seed):
    data = write_fashion_mnist(tmp_path / 'data', num_train=16, num_test=8)
    code, whole_seconds = in_child('whole', config, data, tmp_path / 'whole', options)
    assert code == 0
    reference = final_weights(tmp_path / 'whole')

    from genrep.engine.checkpoints import read_last_checkpoint, verify_checkpoint
    work_dir = tmp_path / 'killed'
    work_dir.mkdir()
    outcomes = []
    for kill in kill_plan(seed):
        code, _ = in_child('attempt', config, data, work_dir, options, kill,
                           kill_after=kill[1] * whole_seconds if kill[0] == 'time' else None)
        assert code in (0, -signal.SIGKILL), (kill, code)
        if code == 0:  # the run reached its end before this kill point
            break
        for path in work_dir.glob('*.pth'):
            verify_checkpoint(str(path))  # no unreadable file under a checkpoint's name
        last = read_last_checkpoint(str(work_dir))
        outcomes.append((kill, last and os.path.basename(last),
                         sorted(p.name for p in work_dir.glob('.*.partial'))))
    assert len(outcomes) >= 2, outcomes
    assert in_child('attempt', config, data, work_dir, options)[0] == 0
    drift = max_abs_diff(final_weights(work_dir), reference)
    print(f'{config}: uninterrupted run {whole_seconds:.1f} s; kills (point, last_checkpoint, '
          f'partial files) {outcomes}; max |dW| {drift}')
    assert drift <= 1e-6, outcomes


def dist_train(config, work_dir, data, port, *extra, pythonpath=None):
    """tools/dist_train.sh with 2 processes of batch 4 (the 2 iterations an epoch of tiny_runs),
    in a process group of its own."""
    options = dict(tiny_options(PERCEPTION, data), **{'train_dataloader.batch_size': 4})
    options = [f'{key}={value}' for key, value in options.items()]
    env = dict(os.environ, PORT=str(port), OMP_NUM_THREADS='1')
    if pythonpath:
        env['PYTHONPATH'] = pythonpath
    return subprocess.Popen(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(work_dir), *extra,
         '--cfg-options', *options], cwd=REPO_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)


# Rank 0 kills the launcher (the script, torchrun) and itself after an iteration, as a node
# failure does.
NODE_FAILURE_HOOK = '''
import os
import signal

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class NodeFailureAfter(Hook):
    priority = 'LOWEST'  # after that iteration's checkpoint

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration and get_rank() == 0:
            # torchrun starts each rank in a session of its own: the launcher's group (the
            # script, torchrun), then this rank; the other rank loses its peer and exits.
            os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.mark.slow
def test_dist_train_killed_as_a_node_failure_resumes_to_the_uninterrupted_weights(tmp_path):
    """2 processes x batch 4 (16 images: 2 iterations an epoch, 3 epochs). The launcher and rank 0
    die by SIGKILL after a drawn iteration, then the run is resumed with --resume (one kill: each
    launch costs tens of seconds of start-up here)."""
    from test_dist_train import free_port
    data = write_fashion_mnist(tmp_path / 'data', num_train=16, num_test=8)
    whole = dist_train(PERCEPTION, tmp_path / 'whole', data, free_port())
    out, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, out[-3000:]
    reference = final_weights(tmp_path / 'whole')

    iteration = random.Random(2).randint(1, TOTAL - 1)
    (tmp_path / 'node_failure.py').write_text(NODE_FAILURE_HOOK)
    failing = tmp_path / 'failing.py'
    failing.write_text(f"_base_ = ['{os.path.join(REPO_ROOT, PERCEPTION)}']\n"
                       "custom_imports = dict(imports=['genrep', 'node_failure'])\n"
                       f"custom_hooks = [dict(type='NodeFailureAfter', iteration={iteration})]\n")
    work_dir = tmp_path / 'killed'
    run = dist_train(str(failing), work_dir, data, free_port(), '--resume',
                     pythonpath=str(tmp_path))
    out, _ = run.communicate(timeout=600)
    assert run.returncode == -signal.SIGKILL, out[-3000:]
    names = sorted(p.name for p in work_dir.glob('*.pth'))
    assert f'epoch_{EPOCHS}.pth' not in names, names
    run = dist_train(PERCEPTION, work_dir, data, free_port(), '--resume')
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 0, out[-3000:]
    drift = max_abs_diff(final_weights(work_dir), reference)
    print(f'dist_train.sh 2: node failure after iteration {iteration} (checkpoints {names}); '
          f'max |dW| {drift}')
    assert drift <= 1e-6


if __name__ == '__main__':  # one training attempt of in_child, in a fresh process
    mode, config, data, work_dir, options, kill = json.loads(sys.argv[1])
    import genrep  # noqa: F401  (the imports before READY)
    import mmengine.runner  # noqa: F401
    print('READY', flush=True)
    if mode == 'whole':
        train(config, data, work_dir, None, options)
    else:
        attempt(config, data, work_dir, options, kill and tuple(kill))

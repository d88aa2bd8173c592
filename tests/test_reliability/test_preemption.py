"""Preemption loses no work: SIGTERM or SIGUSR1 during an iteration ends the run after that
iteration, with a checkpoint of it, a log line saying so and exit code 75; the resumed run ends at
the uninterrupted run's weights.

The signals are real (os.kill of this process, during the iteration: from a hook before its
batch is trained); the toy Runner of toy_runner.py keeps it fast. The same through tools/train.py
and tools/dist_train.sh is in test_chaos.py (slow).
"""
import os
import signal

import pytest
import torch
from mmengine.hooks import Hook
from toy_runner import ITERS_PER_EPOCH, MAX_EPOCHS, make_runner

from genrep.engine import PREEMPTED_EXIT_CODE, PreemptionHook
from genrep.engine.checkpoints import read_last_checkpoint

EPOCH_LOOP = 'genrep.ResumableEpochBasedTrainLoop'
ITER_LOOP = 'genrep.ResumableIterBasedTrainLoop'
TOTAL = MAX_EPOCHS * ITERS_PER_EPOCH  # 12


class SignalDuringIteration(Hook):
    """Sends ``signum`` to this process during iteration ``number`` (1-based), before its
    forward pass."""
    priority = 'HIGHEST'

    def __init__(self, signum, number):
        self.signum = signum
        self.number = number

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.number:
            os.kill(os.getpid(), self.signum)


def hooks_of(loop):
    preemption = dict(preemption=dict(type='genrep.PreemptionHook'))
    if loop == ITER_LOOP:  # checkpoints every 4 iterations, validation every 6
        return dict(preemption, checkpoint=dict(type='genrep.CheckpointHook', by_epoch=False,
                                                interval=4))
    return preemption  # epoch checkpoints, iteration checkpoints every 2


def weights(runner):
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    found = {}
    for loop in (EPOCH_LOOP, ITER_LOOP):
        runner = make_runner(tmp_path_factory.mktemp('whole'), f'preempt_whole_{loop}', loop,
                             hooks=hooks_of(loop))
        runner.train()
        found[loop] = weights(runner)
    return found


@pytest.fixture(autouse=True)
def default_signal_handlers():
    """A preempted run leaves the two signals ignored (it is exiting); the tests go on."""
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def preempt(tmp_path, loop, signum, number):
    work_dir = tmp_path / 'run'
    runner = make_runner(work_dir, f'preempted_{loop}_{number}', loop, hooks=hooks_of(loop),
                         custom_hooks=[SignalDuringIteration(signum, number)])
    with pytest.raises(SystemExit) as stop:
        runner.train()
    assert signal.getsignal(signum) == signal.SIG_IGN  # the exit is under way
    log = open(os.path.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    return stop.value.code, work_dir, log


# (loop, signal, iteration signalled, checkpoint expected, how it is saved):
# - inside epoch 2 (iteration 9; the last iteration checkpoint was at 8): iter_9.pth is written;
# - at 8, whose iteration checkpoint the CheckpointHook just wrote: that one is kept;
# - at 6, the end of epoch 1: epoch_1.pth and the epoch's validation first, then the exit;
# - the iteration loop at 7 (checkpoints every 4): iter_7.pth; at 6, followed by validation:
#   the validation runs, then iter_6.pth.
CASES = [
    (EPOCH_LOOP, signal.SIGTERM, 9, 'iter_9.pth', 'saved'),
    (EPOCH_LOOP, signal.SIGUSR1, 8, 'iter_8.pth', 'its checkpoint was already saved'),
    (EPOCH_LOOP, signal.SIGUSR1, 6, 'epoch_1.pth', 'its checkpoint was already saved'),
    (ITER_LOOP, signal.SIGTERM, 7, 'iter_7.pth', 'saved'),
    (ITER_LOOP, signal.SIGUSR1, 6, 'iter_6.pth', 'saved'),
]


@pytest.mark.parametrize('loop, signum, number, checkpoint, action', CASES)
def test_signal_saves_the_iteration_exits_75_and_resumes_exactly(tmp_path, uninterrupted, loop,
                                                                 signum, number, checkpoint,
                                                                 action):
    code, work_dir, log = preempt(tmp_path, loop, signum, number)
    assert code == PREEMPTED_EXIT_CODE == 75
    assert read_last_checkpoint(str(work_dir)) == str(work_dir / checkpoint)
    saved = torch.load(work_dir / checkpoint, weights_only=True)
    assert saved['meta']['iter'] == number and saved['random_states']
    assert (f'{signum.name} received: iteration {number} is complete, {action} '
            f'{work_dir / checkpoint}; exiting with code 75') in log
    # No logged iteration is lost: the last one logged is the one saved.
    # (mmengine's log processor counts the iteration loop's iterations as epoch 1's.)
    logged = f'[1][{number}/' if loop == ITER_LOOP else (
        f'[{(number - 1) // ITERS_PER_EPOCH + 1}][{(number - 1) % ITERS_PER_EPOCH + 1}/')
    assert f'(train) {logged}' in log
    if number % ITERS_PER_EPOCH == 0:  # the validation that follows ran before the exit
        assert 'Epoch(val) [' in log.split(f'(train) {logged}')[1]

    resumed = make_runner(work_dir, f'preempted_resumed_{loop}_{number}', loop,
                          hooks=hooks_of(loop), resume_from=str(work_dir / checkpoint))
    resumed.train()
    assert resumed.iter == TOTAL
    for key, value in uninterrupted[loop].items():
        assert torch.equal(weights(resumed)[key], value), key


def test_signal_in_the_last_iteration_lets_the_run_finish(tmp_path, uninterrupted):
    runner = make_runner(tmp_path, 'preempted_last', EPOCH_LOOP, hooks=hooks_of(EPOCH_LOOP),
                         custom_hooks=[SignalDuringIteration(signal.SIGTERM, TOTAL)])
    handler = signal.getsignal(signal.SIGTERM)
    runner.train()  # no SystemExit
    assert signal.getsignal(signal.SIGTERM) == handler  # restored after training
    log = open(os.path.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert 'SIGTERM arrived during the last iteration: training finished' in log
    for key, value in uninterrupted[EPOCH_LOOP].items():
        assert torch.equal(weights(runner)[key], value), key


def test_without_the_hook_sigterm_ends_the_process_at_once(tmp_path):
    """The control (in a fresh interpreter, which SIGTERM kills): no checkpoint of the iteration.
    Not a fork of this process: a fork of a process with running threads can hang in the child."""
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    script = '\n'.join([
        'import signal, sys',
        f'sys.path[:0] = [{here!r}, {os.path.dirname(here)!r}]',
        'import genrep',
        'from test_preemption import EPOCH_LOOP, SignalDuringIteration',
        'from toy_runner import make_runner',
        f'make_runner({str(tmp_path)!r}, "no_hook", EPOCH_LOOP,',
        '            custom_hooks=[SignalDuringIteration(signal.SIGTERM, 9)]).train()',
    ])
    child = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                           timeout=600)
    assert child.returncode == -signal.SIGTERM, child.stderr[-2000:]
    assert read_last_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_8.pth')


def test_hook_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown signal name\(s\) \['SIGTREM'\]"):
        PreemptionHook(signals=('SIGTREM', ))
    with pytest.raises(ValueError, match='exit_code must be in'):
        PreemptionHook(exit_code=143)

"""Preemption that loses no work: on SIGTERM or SIGUSR1 training finishes the iteration in
progress, saves a checkpoint of it and exits with :data:`PREEMPTED_EXIT_CODE`.

SIGTERM is what slurm (preemption, ``scancel``) and Kubernetes (pod eviction) send before they kill
a job; SIGUSR1 is what ``sbatch --signal=USR1@<seconds>`` sends ahead of the time limit. Both kill a
Python process at once by default, losing every iteration since the last checkpoint.
``tools/slurm_train.sh`` requeues a job that exits with :data:`PREEMPTED_EXIT_CODE`;
``tools/dist_train.sh`` passes the code on.
"""
import logging
import os
import signal
import threading
from typing import Optional

import torch
from mmengine.dist import all_reduce, barrier, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from genrep.registry import HOOKS

from .checkpoints import CheckpointHook, save_resumable_checkpoint
from .process_group import close_process_group

# sysexits.h EX_TEMPFAIL, "a temporary failure; the user is invited to retry": distinct from
# Python's 1 (an exception), 2 (bad arguments) and 128 + n (killed by signal n).
PREEMPTED_EXIT_CODE = 75
# A file that a preempted run creates (tools/dist_train.sh sets it: torchrun reports any failed
# process as 1, so the launcher script learns of the preemption from the file).
PREEMPTION_MARKER_ENV = 'GENREP_PREEMPTION_MARKER'


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Turns SIGTERM and SIGUSR1 into a checkpoint of the current iteration and an exit with
    :data:`PREEMPTED_EXIT_CODE`.

    The signal handler only records the signal; the hook acts after the iteration in progress (all
    its other hooks, logging and checkpoints included: priority LOWEST). In a multi-process run the
    ranks agree on it after every iteration (a max all-reduce of one integer), so that all of them
    stop at the same one even when the signal reaches them at different times.

    - Inside an epoch, it saves ``iter_<n>.pth`` through genrep's CheckpointHook (its directory,
      the random states, ``last_checkpoint``), which the resumable loops resume from exactly.
    - An iteration that ends an epoch, or is followed by validation (iteration-based loops), is
      followed by the run's own epoch checkpoint and validation first; the hook saves (unless that
      checkpoint holds the iteration already) and exits after the validation, or before the next
      epoch's first batch is drawn.
    - A signal during the last iteration lets the run finish and exit 0 (nothing left to do).

    Then every rank waits for the others, the process group is closed, the file named by the
    environment variable ``GENREP_PREEMPTION_MARKER`` (if set) is created and each process exits
    with ``exit_code`` (``SystemExit``), the two signals ignored from then on.

    Args:
        signals: names of the signals handled.
        exit_code: the exit status of a preempted run.
    """
    priority = 'LOWEST'

    def __init__(self, signals=('SIGTERM', 'SIGUSR1'), exit_code: int = PREEMPTED_EXIT_CODE):
        unknown = [name for name in signals if not isinstance(getattr(signal, name, None),
                                                              signal.Signals)]
        if unknown:
            raise ValueError(f'PreemptionHook: unknown signal name(s) {unknown}')
        if not 0 < exit_code < 128:
            raise ValueError(f'PreemptionHook: exit_code must be in [1, 127] (128 + n reads as '
                             f'killed by signal n), got {exit_code}')
        self.signals = [getattr(signal, name) for name in signals]
        self.exit_code = exit_code
        self._received = 0  # the signal number, set by the handler
        self._agreed = 0  # the signal number every rank acts on
        self._pending = False  # stop after the epoch's hooks and validation
        self._previous_handlers = {}
        self._training = False

    # The signal handler runs between two bytecodes of the main thread: it only records.
    def _handle(self, signum, frame) -> None:
        if not self._received:
            self._received = signum

    def before_train(self, runner) -> None:
        self._training = True
        if threading.current_thread() is not threading.main_thread():
            print_log('PreemptionHook: training runs outside the main thread, where Python cannot '
                      'install signal handlers; SIGTERM and SIGUSR1 keep their default action',
                      logger='current', level=logging.WARNING)
            return
        for signum in self.signals:
            self._previous_handlers[signum] = signal.signal(signum, self._handle)

    def after_train(self, runner) -> None:
        self._training = False
        self._restore_handlers()
        if self._received or self._agreed:
            name = signal.Signals(self._agreed or self._received).name
            print_log(f'{name} arrived during the last iteration: training finished, no '
                      'preemption needed', logger='current', level=logging.WARNING)

    def _signal_on_any_rank(self) -> int:
        if get_world_size() == 1:
            return self._received
        flag = torch.tensor([self._received], dtype=torch.int64)
        all_reduce(flag, op='max')
        return int(flag.item())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._agreed:
            return  # already stopping after this epoch's hooks and validation
        self._agreed = self._signal_on_any_rank()
        if not self._agreed or runner.iter + 1 >= runner.max_iters:
            return
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop):
            boundary = batch_idx + 1 == len(loop.dataloader)
        else:
            step = runner.iter + 1
            boundary = runner.val_loop is not None and step >= loop.val_begin and (
                step % loop.val_interval == 0)
        if boundary:
            self._pending = True
            print_log(f'{self._signal_name()} received: stopping after iteration {runner.iter + 1}'
                      ', its checkpoint and validation', logger='current', level=logging.WARNING)
            return
        self._stop(runner, end_of_epoch=False)

    def after_val(self, runner) -> None:
        if self._pending and self._training:
            self._stop(runner, end_of_epoch=True)

    def before_train_epoch(self, runner) -> None:
        if self._pending:
            self._stop(runner, end_of_epoch=True)

    def _signal_name(self) -> str:
        return signal.Signals(self._agreed).name

    def _stop(self, runner, end_of_epoch: bool) -> None:
        iteration = runner.iter if end_of_epoch else runner.iter + 1
        hook = _checkpoint_hook(runner)
        if hook is not None and hook.last_saved_iter == iteration:
            path, action = hook.last_saved_path, 'its checkpoint was already saved'
        elif hook is not None:
            path, action = hook.save_checkpoint_now(runner, end_of_epoch), 'saved'
        else:
            path = save_resumable_checkpoint(
                runner, f'iter_{iteration}.pth', meta=dict(epoch=runner.epoch, iter=iteration))
            action = 'saved (no genrep.CheckpointHook: into the work dir)'
        print_log(f'{self._signal_name()} received: iteration {iteration} is complete, {action} '
                  f'{path}; exiting with code {self.exit_code} (preempted: resume with '
                  '--resume; tools/slurm_train.sh requeues the job)', logger='current',
                  level=logging.WARNING)
        barrier()  # no rank exits (and so ends the launch) while rank 0 writes
        close_process_group()
        marker = os.environ.get(PREEMPTION_MARKER_ENV)
        if marker:
            open(marker, 'a').close()
        # The exit is under way: a launcher's SIGTERM to the ranks still running (torchrun sends
        # one when the first rank exits) must not turn exit code 75 into a death by signal.
        for signum in self._previous_handlers:
            signal.signal(signum, signal.SIG_IGN)
        self._previous_handlers = {}
        raise SystemExit(self.exit_code)

    def _restore_handlers(self) -> None:
        """Give the signals their handlers from before training back."""
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}


def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook):
            return hook
    return None

"""Checkpoints that a killed, copied or damaged run can still resume from.

- :class:`CheckpointHook`: mmengine's, plus checkpoints every ``iter_interval`` iterations inside
  an epoch (GenRep stages are one epoch long), ``last_checkpoint`` written relative to the work dir
  (a copied work dir resumes from its own files), and its arguments checked when it is built
  (mmengine's passes unknown keys on to ``save_checkpoint``, which fails at the first save).
- :func:`find_resumable_checkpoint`: the newest checkpoint of a work dir that reads back, falling
  back past a corrupt one with a warning naming both files.
- :func:`verify_checkpoint`: reads a checkpoint file up front so that a truncated or refused one
  fails with its file name, before any training.

Every file the hook writes into a local directory is written atomically
(:mod:`genrep.engine.atomic_files`: a temporary file, fsync, rename), the checkpoint first and
``last_checkpoint`` after it, and a checkpoint that ``max_keep_ckpts`` retires is removed only once
its successor is complete: a kill or a full disk during a save leaves the earlier checkpoints as
they were and no incomplete file under a checkpoint's name.
"""
import glob
import inspect
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmengine.logging import print_log

from genrep.registry import HOOKS

from .atomic_files import ATOMIC_BACKEND, remove_partial_files, write_atomically
from .resume import RandomStateHook

LAST_CHECKPOINT = 'last_checkpoint'
# The files a resume may start from: mmengine's epoch and iteration checkpoints (not best_*.pth,
# which hold no optimizer state).
RESUMABLE = re.compile(r'^(epoch|iter)_\d+\.pth$')


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read; the message names the file."""


def verify_checkpoint(path: str) -> None:
    """Raise :class:`CheckpointError` naming ``path`` unless it is a complete, loadable checkpoint.

    The zip container torch writes is CRC-checked member by member (a truncated or damaged file
    fails here), then its pickle is read as ``mmengine`` would read it (``weights_only``; tensor
    data memory-mapped, not copied), so a refused global (a malicious pickle) fails here too.
    """
    if not osp.isfile(path):
        raise CheckpointError(f'checkpoint {path} does not exist')
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
            if damaged is not None:
                raise CheckpointError(f'checkpoint {path} is damaged (CRC mismatch in {damaged})')
            torch.load(path, map_location='cpu', mmap=True)
        else:  # torch's legacy (non-zip) format, or not a torch file at all
            torch.load(path, map_location='cpu')
    except CheckpointError:
        raise
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ''
        raise CheckpointError(f'checkpoint {path} cannot be read ({type(err).__name__}: {reason}); '
                              'it is truncated, damaged, or not a torch checkpoint') from err


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The file named by ``<work_dir>/last_checkpoint``, or None without one.

    Relative names are relative to the work dir (what :class:`CheckpointHook` writes). An absolute
    name (mmengine's) is kept where it exists; where it does not but a file of the same name lies in
    the work dir, the work dir was copied or moved and its own file is returned.
    """
    pointer = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        name = f.read().strip()
    if not name:
        return None
    if not osp.isabs(name):
        return osp.join(work_dir, name)
    local = osp.join(work_dir, osp.basename(name))
    if not osp.exists(name) and osp.exists(local):
        return local
    return name


def resumable_checkpoints(work_dir: str) -> List[str]:
    """The work dir's epoch/iteration checkpoints, newest first: the one ``last_checkpoint`` names,
    then the others by modification time."""
    found = [path for path in glob.glob(osp.join(work_dir, '*.pth'))
             if RESUMABLE.match(osp.basename(path))]
    found.sort(key=lambda path: (osp.getmtime(path), path), reverse=True)
    last = read_last_checkpoint(work_dir)
    if last is not None:
        found = [last] + [p for p in found if osp.abspath(p) != osp.abspath(last)]
    return found


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that reads back (:func:`verify_checkpoint`), or None
    when the work dir holds none. A newer unreadable one is passed over with a warning naming both
    files; if none reads back, :class:`CheckpointError` lists them."""
    candidates = resumable_checkpoints(work_dir)
    failures = []
    for path in candidates:
        try:
            verify_checkpoint(path)
        except CheckpointError as err:
            failures.append(str(err))
            continue
        if failures:
            print_log(f'resuming from {path} instead: ' + '; '.join(failures), logger='current',
                      level=logging.WARNING)
        return path
    if failures:
        raise CheckpointError(f'no checkpoint of {work_dir} can be resumed from: '
                              + '; '.join(failures))
    return None


def save_resumable_checkpoint(runner, filename: str, meta: dict) -> str:
    """Save ``<work_dir>/<filename>`` with the optimizer, schedulers and every rank's random
    states, atomically, and point ``last_checkpoint`` at it; return its path. Called on every rank
    (only rank 0 writes); for runs without genrep's :class:`CheckpointHook`."""
    _record_random_states(runner)
    runner.save_checkpoint(runner.work_dir, filename, meta=meta,
                           backend_args=dict(backend=ATOMIC_BACKEND))
    path = osp.join(runner.work_dir, filename)
    if is_main_process():
        write_atomically(osp.join(runner.work_dir, LAST_CHECKPOINT), filename.encode())
    return path


def _record_random_states(runner) -> None:
    """Every rank calls this hook's saves; only rank 0 writes. The random states of all ranks are
    gathered here, where every rank still is (see RandomStateHook)."""
    for hook in runner.hooks:
        if isinstance(hook, RandomStateHook):
            hook.record_random_states(runner)


def _parameters(function) -> List[str]:
    """The named parameters of ``function`` (no self, no *args or **kwargs)."""
    return [name for name, p in inspect.signature(function).parameters.items()
            if name != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@HOOKS.register_module()
class CheckpointHook(MMEngineCheckpointHook):
    """mmengine's CheckpointHook with mid-epoch checkpoints, a relative ``last_checkpoint`` and its
    arguments checked when built.

    Positional arguments are mmengine's, in its order.

    Args:
        *args: mmengine CheckpointHook's positional arguments (``interval``, ``by_epoch``, ...).
        iter_interval: keyword-only. With ``by_epoch=True``, also save ``iter_<n>.pth`` every
            ``iter_interval`` iterations (0: never), so that a long epoch killed midway resumes
            near where it stopped. Not at an iteration that ends an epoch whose checkpoint is
            saved anyway. Ignored with ``by_epoch=False``, where ``interval`` counts iterations.
        max_keep_iter_ckpts: keyword-only. How many of those iteration checkpoints to keep (the
            newest).
        **kwargs: mmengine CheckpointHook's arguments; any other key is refused here (mmengine would
            pass it to ``Runner.save_checkpoint``, which refuses it at the first save).
    """

    def __init__(self, *args, iter_interval: int = 0, max_keep_iter_ckpts: int = 1, **kwargs):
        known = _parameters(MMEngineCheckpointHook.__init__)
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise TypeError(f'CheckpointHook got unknown argument(s) {unknown}; it takes '
                            f'{known + ["iter_interval", "max_keep_iter_ckpts"]}')
        if iter_interval < 0 or max_keep_iter_ckpts < 1:
            raise ValueError('CheckpointHook: iter_interval must be >= 0 and max_keep_iter_ckpts '
                             f'>= 1, got {iter_interval} and {max_keep_iter_ckpts}')
        super().__init__(*args, **kwargs)
        self.iter_interval = iter_interval
        self.max_keep_iter_ckpts = max_keep_iter_ckpts
        # The newest save of this hook: the iteration it holds and its path.
        self.last_saved_iter: Optional[int] = None
        self.last_saved_path: Optional[str] = None

    def before_train(self, runner) -> None:
        out_dir = str(self.out_dir or runner.work_dir)
        if self.backend_args is None and self.file_client_args is None and '://' not in out_dir:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)
        self.last_saved_iter = self.last_saved_path = None
        if is_main_process() and osp.isdir(str(self.out_dir)):
            for path in remove_partial_files(str(self.out_dir)):
                runner.logger.warning(f'removed {path}, the temporary file of a checkpoint whose '
                                      'writing was interrupted (it was never renamed to a '
                                      'checkpoint name)')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        if not self.by_epoch or self.iter_interval <= 0:
            return
        if not self.every_n_train_iters(runner, self.iter_interval):
            return
        epoch_saves = self.every_n_epochs(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_epoch(runner))
        if epoch_saves and self.end_of_epoch(runner.train_dataloader, batch_idx):
            return
        self.save_iteration_checkpoint(runner)

    def save_iteration_checkpoint(self, runner) -> str:
        """Save ``iter_<n>.pth`` after iteration n = ``runner.iter + 1`` (called from
        ``after_train_iter``, on every rank) into the hook's directory, point
        ``last_checkpoint`` at it and return its path. An epoch-based run resumes from it inside
        the epoch."""
        step = runner.iter + 1
        filename = f'iter_{step}.pth'
        _record_random_states(runner)
        runner.logger.info(f'Saving checkpoint at {step} iterations (inside epoch '
                           f'{runner.epoch + 1})')
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            meta=dict(epoch=runner.epoch, iter=step), backend_args=self.backend_args)
        path = self.file_backend.join_path(self.out_dir, filename)
        self.last_saved_iter, self.last_saved_path = step, path
        if is_main_process():
            self._write_last_checkpoint(runner, path)
            self._remove_old_iter_checkpoints()
        return path

    def save_checkpoint_now(self, runner, end_of_epoch: bool) -> str:
        """Save the state of the iteration just trained, as this hook names it, and return the path
        (:class:`~genrep.engine.PreemptionHook` calls it on every rank). ``end_of_epoch``: called
        after an epoch's hooks and validation (``epoch_<n>.pth`` for an epoch-based hook), else
        from ``after_train_iter`` (``iter_<n>.pth``)."""
        if self.by_epoch and not end_of_epoch:
            return self.save_iteration_checkpoint(runner)
        if end_of_epoch:
            step = runner.epoch if self.by_epoch else runner.iter
            meta = dict(epoch=runner.epoch, iter=runner.iter)
        else:
            step = runner.iter + 1
            meta = dict(epoch=runner.epoch, iter=step)
        self._save_checkpoint_with_step(runner, step, meta)
        return self.last_saved_path

    def _save_checkpoint_with_step(self, runner, step, meta):
        """mmengine's save of ``epoch_<n>.pth`` / ``iter_<n>.pth`` with its ``max_keep_ckpts``
        bookkeeping, except that the checkpoint it retires is removed after the new one is
        written (mmengine removes it first, so a save that fails could leave none), and
        ``last_checkpoint`` is written atomically, relative to the work dir."""
        _record_random_states(runner)
        retired = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                retired = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        self.last_saved_iter, self.last_saved_path = meta['iter'], self.last_ckpt
        if not is_main_process():
            return
        self._write_last_checkpoint(runner, self.last_ckpt)
        if retired is not None:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(retired))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed writes a directory
                self.file_backend.rmtree(path)

    @staticmethod
    def _write_last_checkpoint(runner, path: str) -> None:
        """Name ``path`` relative to the work dir where it lies inside it, absolute elsewhere;
        written atomically, after the checkpoint it names."""
        name = str(path)
        if osp.isabs(name):
            relative = osp.relpath(name, runner.work_dir)
            if not relative.startswith(os.pardir):
                name = relative
        write_atomically(osp.join(runner.work_dir, LAST_CHECKPOINT), name.encode())

    def _remove_old_iter_checkpoints(self) -> None:
        if not osp.isdir(str(self.out_dir)):
            return  # a remote out_dir: leave its files alone
        steps = sorted(int(m.group(1)) for m in (
            re.match(r'^iter_(\d+)\.pth$', name) for name in os.listdir(self.out_dir)) if m)
        for step in steps[:-self.max_keep_iter_ckpts]:
            os.remove(osp.join(self.out_dir, f'iter_{step}.pth'))

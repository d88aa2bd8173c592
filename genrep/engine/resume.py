"""Resume that continues exactly where a killed run stopped.

mmengine 0.10.7 restores the model, the optimizer, the parameter schedulers, the message hub and the
epoch/iteration counters. It does not restore:

- the random states (python, numpy, torch, CUDA): augmentation (``RandomFlip`` in the main process)
  and the model's own noise draw different numbers after a resume;
- the position inside an epoch: ``EpochBasedTrainLoop`` restarts a resumed epoch at its first batch,
  so a run killed at batch k of n trains k + n batches in that epoch.

:class:`RandomStateHook` writes each rank's random states into the checkpoint
(``checkpoint['random_states']``) and keeps validation during training from consuming the training
random stream (it restores the states after each validation epoch, so the next epoch sees the same
numbers whether or not a resumed run validated before it). The two loops skip the batches of the
resumed epoch that were already trained, fetching and discarding them (so data workers and the main
process draw their augmentation numbers as in the uninterrupted run, without forward or backward),
then restore the saved random states before the first batch they train.

A run started with ``load_from`` and no resume takes only the weights from its checkpoint: it
draws its own random stream from its seed and may have another number of batches per epoch.

Data workers draw their augmentations from generators of their own, seeded when a worker starts
(mmengine's ``worker_init_fn``: seed, rank and worker id, the same every epoch). A persistent
worker (``persistent_workers=True``) carries its random state from one epoch to the next, where a
resumed run's fresh workers start from the seed: resumes inside the first epoch were exact, any
later one drew other augmentations.
:class:`ResumableEpochBasedTrainLoop` therefore starts the training workers afresh each epoch
(``persistent_workers=False``, said in the log), as a resumed run does. The iteration-based loop
replays the data stream from its start through the same workers and needs no change.

Exact within these limits: the same world size and batches per epoch (checked). Everything else in
a run that uses global random generators is covered.
"""
import copy
import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from torch.utils.data import DataLoader

from genrep.registry import HOOKS, LOOPS

RANDOM_STATES_KEY = 'random_states'


def capture_random_states() -> dict:
    """The states of python's, numpy's and torch's global generators (and CUDA's, where in use).

    Plain tuples, ints, arrays and tensors: a ``weights_only`` load reads them back.
    """
    states = dict(python=random.getstate(), numpy=np.random.get_state(),
                  torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict) -> None:
    """Set the global generators to ``states`` from :func:`capture_random_states`."""
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'].cpu())
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states['cuda']])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves every rank's random states in each checkpoint and hands them to the resumed loop.

    Registered by :class:`ResumableEpochBasedTrainLoop` and :class:`ResumableIterBasedTrainLoop`;
    it needs no configuration. Only rank 0 writes checkpoints (``Runner.save_checkpoint`` is
    master-only), so the states of all ranks are gathered beforehand, on every rank, by
    :meth:`record_random_states`, which genrep's CheckpointHook calls before each save. In a single
    process the states are captured at the save itself, whatever hook saves. Priority LOWEST: the
    states are restored after validation hooks (e.g. generation metrics) drew theirs.
    """
    priority = 'LOWEST'

    def __init__(self):
        self.resumed_states: Optional[dict] = None
        self.resumed_meta: dict = {}
        self._states_before_val: Optional[dict] = None
        self._recorded: Optional[list] = None

    def record_random_states(self, runner) -> None:
        """Gather every rank's random states for the next checkpoint (a collective: call it on
        every rank)."""
        self._recorded = all_gather_object(self._training_states())

    def _training_states(self) -> dict:
        """The states training continues with: during a validation inside training (where
        CheckpointHook saves the best checkpoint and re-saves the epoch's), those from before it."""
        if self._states_before_val is not None:
            return self._states_before_val
        return capture_random_states()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states, self._recorded = self._recorded, None
        if states is None and get_world_size() == 1:
            states = [self._training_states()]
        if states is None:
            return  # e.g. a best checkpoint: no optimizer state, not resumed from
        checkpoint[RANDOM_STATES_KEY] = states
        checkpoint['meta']['train_batches_per_epoch'] = len(runner.train_loop.dataloader)
        checkpoint['meta']['world_size'] = get_world_size()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.resumed_meta = {}
        self.resumed_states = None
        if not runner._resume:
            # ``load_from`` without resume: only the weights are taken; the run draws its own
            # random stream from its seed, and the checkpoint's batches per epoch do not bind it.
            return
        states = checkpoint.get(RANDOM_STATES_KEY)
        self.resumed_meta = dict(checkpoint.get('meta', {}))
        if states is None:
            print_log('the checkpoint holds no random states (written by mmengine\'s '
                      'CheckpointHook in a multi-process run, or by an older genrep): the resumed '
                      'run draws other random numbers than the original one', logger='current',
                      level=logging.WARNING)
            return
        if len(states) != get_world_size():
            print_log(
                f'the checkpoint holds the random states of {len(states)} processes, this run has '
                f'{get_world_size()}: the random states are not restored, so the resumed run '
                'draws other random numbers than the original one', logger='current',
                level=logging.WARNING)
            return
        self.resumed_states = states[get_rank()]

    def before_val_epoch(self, runner) -> None:
        self._states_before_val = capture_random_states()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._states_before_val is not None:
            restore_random_states(self._states_before_val)
            self._states_before_val = None

    def take_resumed_states(self) -> Optional[dict]:
        """The states saved with the checkpoint this run resumed from (once; then None)."""
        states, self.resumed_states = self.resumed_states, None
        return states


def _random_state_hook(runner) -> RandomStateHook:
    for hook in runner.hooks:
        if isinstance(hook, RandomStateHook):
            return hook
    hook = RandomStateHook()
    runner.register_hook(hook)
    return hook


def _check_batches_per_epoch(hook: RandomStateHook, batches_per_epoch: int) -> None:
    saved = hook.resumed_meta.get('train_batches_per_epoch')
    if saved is not None and saved != batches_per_epoch:
        raise ValueError(
            f'cannot resume exactly: the checkpoint was written with {saved} training batches per '
            f'epoch, this run has {batches_per_epoch} (another batch size, dataset size or number '
            'of processes); resume with the original settings, or start a new run with '
            'load_from=<checkpoint>')


def _workers_started_each_epoch(dataloader):
    """The training dataloader (a config) with ``persistent_workers=False`` where it has workers:
    each epoch's workers then start from their seed, in the original run as in a resumed one (see
    the module docstring). A built DataLoader with persistent workers is kept, with a warning."""
    if isinstance(dataloader, dict):
        if dataloader.get('persistent_workers') and dataloader.get('num_workers', 0) > 0:
            dataloader = copy.deepcopy(dataloader)
            dataloader['persistent_workers'] = False
            print_log('train_dataloader.persistent_workers=True is set to False: a persistent '
                      'worker carries its random state into the next epoch, which a resumed run '
                      'cannot restore; fresh workers each epoch draw the same augmentations in an '
                      'interrupted and an uninterrupted run', logger='current')
    elif isinstance(dataloader, DataLoader) and dataloader.persistent_workers and (
            dataloader.num_workers > 0):
        print_log('the training DataLoader keeps its workers from one epoch to the next '
                  '(persistent_workers=True): a run resumed after its first epoch draws other '
                  'augmentations than the original one', logger='current', level=logging.WARNING)
    return dataloader


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """EpochBasedTrainLoop that resumes mid-epoch at the next untrained batch, random states
    restored (see the module docstring). Same arguments as EpochBasedTrainLoop."""

    def __init__(self, runner, dataloader, *args, **kwargs):
        super().__init__(runner, _workers_started_each_epoch(dataloader), *args, **kwargs)
        self._random_state_hook = _random_state_hook(runner)

    def run_epoch(self) -> None:
        """Iterate one epoch, from the batch after the last one trained when resuming."""
        resumed = self._random_state_hook.take_resumed_states() if self._iter > 0 else None
        batches_per_epoch = len(self.dataloader)
        done = self._iter - self._epoch * batches_per_epoch
        if resumed is not None:
            _check_batches_per_epoch(self._random_state_hook, batches_per_epoch)
        if not 0 <= done < batches_per_epoch:
            raise ValueError(f'cannot resume at iteration {self._iter} of epoch {self._epoch + 1}:'
                             f' an epoch has {batches_per_epoch} batches')
        # The states were saved right after the last trained iteration: at an epoch boundary that
        # is before this epoch's hooks, inside an epoch after its first ``done`` batches were drawn.
        if resumed is not None and not done:
            restore_random_states(resumed)
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        batches = iter(self.dataloader)
        if done:
            print_log(f'resuming inside epoch {self._epoch + 1}: skipping its first {done} of '
                      f'{batches_per_epoch} batches (loaded and discarded, not trained)',
                      logger='current')
            for _ in range(done):
                next(batches)
            if resumed is not None:
                restore_random_states(resumed)
        for idx, data_batch in enumerate(batches, start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """IterBasedTrainLoop whose resume restores the random states after replaying the data stream
    (mmengine already replays ``iter`` batches to find the data position). Same arguments."""

    def __init__(self, runner, *args, **kwargs):
        super().__init__(runner, *args, **kwargs)
        self._random_state_hook = _random_state_hook(runner)

    def run(self):
        """Launch training (mmengine's IterBasedTrainLoop.run, plus the random states)."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            resumed = self._random_state_hook.take_resumed_states()
            if resumed is not None:
                _check_batches_per_epoch(self._random_state_hook, len(self.dataloader))
            print_log(f'resuming at iteration {self._iter}: replaying the data stream up to it '
                      '(loaded and discarded, not trained)', logger='current')
            for _ in range(self._iter):
                next(self.dataloader_iterator)
            if resumed is not None:
                restore_random_states(resumed)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

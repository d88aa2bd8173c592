"""No silent loss of weights: training stops at the first non-finite gradient, update or loss.

Without it a run with ``optimizer.lr=inf`` exits 0 with ``loss: nan`` and its checkpoints replace
good weights with NaN ones.
"""
import logging
import math
from typing import Dict, List

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapperDict

from genrep.registry import HOOKS

ACTIONS = ('raise', 'skip')


def _optim_wrappers(runner) -> List:
    wrapper = runner.optim_wrapper
    if isinstance(wrapper, OptimWrapperDict):
        return list(wrapper.optim_wrappers.values())
    return [wrapper]


def _all_finite(tensors: List[torch.Tensor]) -> bool:
    """Whether every value of ``tensors`` is finite on every process (max |x| per process, then one
    scalar all-reduce: under FSDP each process holds other shards, and all must stop together)."""
    tensors = [t for t in tensors if t.numel() > 0]  # FSDP leaves some shards empty
    finite = not tensors or math.isfinite(
        float(torch.nn.utils.get_total_norm(tensors, norm_type=math.inf)))
    if get_world_size() > 1:
        flag = torch.tensor(0.0 if finite else 1.0)
        all_reduce(flag, op='max')
        finite = not bool(flag)
    return finite


@HOOKS.register_module()
class NonFiniteCheckHook(Hook):
    """Stops training at a non-finite gradient, parameter update or loss, before any checkpoint
    holds it.

    Checks, on every optimizer of the run:

    - before each optimizer step, that every gradient is finite (an optimizer step pre-hook, so a
      non-finite gradient is never applied);
    - after each step, that every parameter is still finite (a finite gradient times an infinite
      learning rate is not);
    - after each iteration, that every logged loss is finite. This hook's priority (ABOVE_NORMAL)
      puts the check ahead of the logger and of CheckpointHook (VERY_LOW).

    The error names the iteration, the first offending parameters and the learning rate.

    Mixed precision: AmpOptimWrapper's GradScaler skips a step whose scaled gradients overflow and
    lowers its scale; that is expected, so with an AMP optim wrapper such skips (and the non-finite
    losses of those iterations) are counted (``non_finite_skipped_steps`` in the message hub's
    runtime info, one warning each) and training stops only after ``max_consecutive_skips`` of them
    in a row. ``action='skip'`` treats a non-finite gradient without AMP the same way: the step is
    skipped (every ``.grad`` dropped, so the optimizer changes nothing) and counted.

    Args:
        action: 'raise' (default) or 'skip' on a non-finite gradient without AMP.
        max_consecutive_skips: skipped steps in a row (AMP overflows, or ``action='skip'``) after
            which training stops.
        check_params: check the parameters after each step (one pass over them).
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self, action: str = 'raise', max_consecutive_skips: int = 10,
                 check_params: bool = True):
        if action not in ACTIONS:
            raise ValueError(f'NonFiniteCheckHook: action must be one of {ACTIONS}, got {action!r}')
        if max_consecutive_skips < 0:
            raise ValueError('NonFiniteCheckHook: max_consecutive_skips must be >= 0, got '
                             f'{max_consecutive_skips}')
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.check_params = check_params
        self.skipped_steps = 0
        self.consecutive_skips = 0
        self._handles = []
        self._names: Dict[int, str] = {}
        self._runner = None
        self._stepped = False

    # hooks

    def before_train(self, runner) -> None:
        self._runner = runner
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._names = {id(p): name for name, p in model.named_parameters()}
        self.skipped_steps = int(runner.message_hub.get_info('non_finite_skipped_steps', 0))
        for wrapper in _optim_wrappers(runner):
            amp = isinstance(wrapper, AmpOptimWrapper)
            optimizer = wrapper.optimizer
            self._handles.append(optimizer.register_step_pre_hook(
                lambda opt, args, kwargs, amp=amp: self._check_gradients(opt, amp)))
            if self.check_params:
                self._handles.append(optimizer.register_step_post_hook(
                    lambda opt, args, kwargs: self._check_parameters(opt)))

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._stepped = False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        wrappers = _optim_wrappers(runner)
        amp = any(isinstance(w, AmpOptimWrapper) for w in wrappers)
        update_due = any(w.should_update() for w in wrappers)
        losses = {key: float(value.detach() if isinstance(value, torch.Tensor) else value)
                  for key, value in (outputs or {}).items() if 'loss' in key}
        bad = {key: value for key, value in losses.items() if not math.isfinite(value)}
        if amp and update_due and not self._stepped:
            self._count_skip(runner, 'the GradScaler skipped the step (gradient overflow)')
        elif bad and not amp and self.action == 'raise':
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}: '
                + ', '.join(f'{k}={v}' for k, v in bad.items()) + '. ' + self._advice(wrappers))
        elif update_due and self._stepped:
            self.consecutive_skips = 0

    # checks (called by the optimizers)

    def _check_gradients(self, optimizer, amp: bool) -> None:
        self._stepped = True
        params = [p for group in optimizer.param_groups for p in group['params']
                  if p.grad is not None]
        if _all_finite([p.grad.detach() for p in params]):
            return
        offending = [p for p in params if not bool(torch.isfinite(p.grad).all())]
        what = f'non-finite gradient in {self._describe(offending, len(params))}'
        if self.action == 'skip' and not amp:
            for p in params:
                p.grad = None  # an optimizer leaves a parameter without .grad unchanged
            self._stepped = False
            self._count_skip(self._runner, what)
            return
        raise FloatingPointError(f'{what} at iteration {self._iteration()}; the step was not '
                                 f'applied. {self._advice([optimizer])}')

    def _check_parameters(self, optimizer) -> None:
        params = [p for group in optimizer.param_groups for p in group['params']]
        if _all_finite([p.detach() for p in params]):
            return
        offending = [p for p in params if not bool(torch.isfinite(p).all())]
        raise FloatingPointError(
            f'the optimizer step of iteration {self._iteration()} made '
            f'{self._describe(offending, len(params))} non-finite (the gradients were finite). '
            + self._advice([optimizer]))

    # helpers

    def _count_skip(self, runner, what: str) -> None:
        self.skipped_steps += 1
        self.consecutive_skips += 1
        runner.message_hub.update_info('non_finite_skipped_steps', self.skipped_steps)
        if self.consecutive_skips > self.max_consecutive_skips:
            raise FloatingPointError(
                f'{what} at iteration {runner.iter + 1}: {self.consecutive_skips} steps in a row '
                f'skipped (max_consecutive_skips={self.max_consecutive_skips}), so the loss itself '
                f'is not finite. ' + self._advice(_optim_wrappers(runner)))
        print_log(f'{what} at iteration {runner.iter + 1}: step skipped ({self.skipped_steps} '
                  'so far)', logger='current', level=logging.WARNING)

    def _iteration(self) -> str:
        return '?' if self._runner is None else str(self._runner.iter + 1)

    def _describe(self, offending: List[torch.Tensor], total: int) -> str:
        if not offending:
            return f'the shards of other processes (this one holds {total} parameters)'
        names = [self._names.get(id(p), f'<unnamed {tuple(p.shape)}>') for p in offending]
        shown = ', '.join(names[:3]) + (', ...' if len(names) > 3 else '')
        return f'{len(offending)} of {total} parameters ({shown})'

    @staticmethod
    def _advice(wrappers) -> str:
        lrs = sorted({group['lr'] for w in wrappers
                      for group in getattr(w, 'optimizer', w).param_groups})
        return (f'Training stopped before any checkpoint held it (learning rate {lrs}); lower '
                'optim_wrapper.optimizer.lr, clip gradients with optim_wrapper.clip_grad, or '
                'check the data.')


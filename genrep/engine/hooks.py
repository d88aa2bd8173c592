"""Hooks of GenRep's training: the semantic EMA denoiser (Sec. 3.3)."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from genrep.registry import HOOKS


@torch.no_grad()
def semantic_ema_update(semantic: nn.Module, unified: nn.Module, momentum: float) -> None:
    """theta_sem <- m theta_sem + (1 - m) theta_unified (Sec. 3.3, third bullet), over parameters
    and floating-point buffers of two modules of the same structure; integer buffers are copied."""
    for (name, target), (_, source) in zip(semantic.state_dict().items(),
                                           unified.state_dict().items()):
        if target.dtype.is_floating_point:
            target.mul_(momentum).add_(source.detach(), alpha=1.0 - momentum)
        else:
            target.copy_(source)


@HOOKS.register_module()
class SemanticEMAHook(Hook):
    """Keeps GenRep's semantic denoiser an exponential moving average of the unified one.

    When training starts, a semantic denoiser that was never filled (a new stage 2, whose weights
    come from a stage-1 checkpoint by ``load_from``) is set to the unified denoiser; a resumed run
    keeps the one saved in its checkpoint. After each optimizer step it moves by
    :func:`semantic_ema_update`.

    Args:
        momentum: m (paper: 0.999).
        interval: update every ``interval`` iterations.
    """
    priority = 'NORMAL'

    def __init__(self, momentum: float = 0.999, interval: int = 1):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'SemanticEMAHook: momentum must be in [0, 1], got {momentum}')
        self.momentum = momentum
        self.interval = interval

    @staticmethod
    def _genrep(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, 'semantic_denoiser', None) is None:
            raise TypeError(f'SemanticEMAHook needs a stage-2 genrep.GenRep model, got '
                            f'{type(model).__name__} without a semantic denoiser')
        return model

    def before_train(self, runner) -> None:
        model = self._genrep(runner)
        if not bool(model.semantic_initialized):
            model.semantic_denoiser.load_state_dict(model.denoiser.state_dict())
            model.semantic_initialized.fill_(True)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            model = self._genrep(runner)
            semantic_ema_update(model.semantic_denoiser, model.denoiser, self.momentum)

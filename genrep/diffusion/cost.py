"""What a block of diffusion work costs: the rows (image x class) its denoiser evaluated and the
wall time, measured around the block (the teacher of a training step, a posterior on one image)."""
import time

import torch
from torch import nn


class DenoiserCost:
    """Context manager counting the rows that pass through ``denoiser``'s forward inside it, and
    the seconds it lasted.

    Example::

        with DenoiserCost(model.denoiser) as cost:
            model.posterior.posterior(model.denoiser, x0, class_ids)
        cost.evaluations, cost.seconds
    """

    def __init__(self, denoiser: nn.Module):
        self.denoiser = denoiser
        self.evaluations = 0
        self.seconds = 0.0

    def _count(self, _module, args) -> None:
        self.evaluations += args[0].shape[0]

    def _synchronize(self) -> None:
        """Wait for queued GPU work, so the seconds are the block's (CUDA runs asynchronously)."""
        param = next(self.denoiser.parameters(), None)
        if param is not None and param.is_cuda:
            torch.cuda.synchronize(param.device)

    def __enter__(self) -> 'DenoiserCost':
        self._handle = self.denoiser.register_forward_pre_hook(self._count)
        self._synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._synchronize()
        self.seconds = time.perf_counter() - self._start
        self._handle.remove()

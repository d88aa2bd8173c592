"""What a block of diffusion work costs: the rows (image x class) its denoiser evaluated and the
wall time, measured around the block (the teacher of a training step, a posterior on one image)."""
import time

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

    def __enter__(self) -> 'DenoiserCost':
        self._handle = self.denoiser.register_forward_pre_hook(self._count)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start
        self._handle.remove()

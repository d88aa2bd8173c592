"""FLOPs and saved activations of a block of PyTorch work, from ``torch.utils.flop_counter``.

``FlopCounterMode`` counts matmuls, convolutions and attention by their formulas (2 FLOPs a
multiply-add), on any device, the meta device included (shapes without memory: a real-size model
costs nothing to count). One gap, closed here: on CPU, ``scaled_dot_product_attention`` runs
``_scaled_dot_product_flash_attention_for_cpu``, which the counter does not know (it counts 0 for
it and its backward), so :func:`count_flops` maps it to the counter's own SDPA formulas; on the
meta device SDPA decomposes into the two batched matmuls, which it counts already.
tests/test_benchmarks_flop_count.py checks both devices against hand counts.
"""
from typing import Callable, Iterable, Optional, Tuple

import torch
from torch.utils.flop_counter import (FlopCounterMode, sdpa_backward_flop_count,
                                      sdpa_flop_count)


def _cpu_flash_forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_flash_backward(grad_out_shape, query_shape, key_shape, value_shape, *args,
                        out_shape=None, **kwargs):
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


CUSTOM_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_forward,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward,
}


def flop_counter() -> FlopCounterMode:
    """A silent ``FlopCounterMode`` that also counts CPU flash attention."""
    return FlopCounterMode(display=False, custom_mapping=CUSTOM_FORMULAS)


def count_flops(fn: Callable, *args, **kwargs) -> Tuple[int, object]:
    """(FLOPs of ``fn(*args, **kwargs)``, its result)."""
    with flop_counter() as counter:
        result = fn(*args, **kwargs)
    return counter.get_total_flops(), result


class SavedActivations:
    """Context manager: the bytes of the tensors autograd saves for the backward inside it (each
    saved tensor counted once by identity; views of one storage count separately, so this bounds
    the activation memory from above). Works on meta tensors."""

    def __init__(self):
        self.bytes = 0
        self._seen = set()

    def _pack(self, tensor):
        if id(tensor) not in self._seen and not isinstance(tensor, torch.nn.Parameter):
            self._seen.add(id(tensor))
            self.bytes += tensor.numel() * tensor.element_size()
        return tensor

    def __enter__(self) -> 'SavedActivations':
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


def forward_backward_flops(forward: Callable[[], torch.Tensor],
                           params: Optional[Iterable[torch.Tensor]] = None
                           ) -> Tuple[int, int, int]:
    """(forward FLOPs, backward FLOPs, saved-activation bytes) of ``forward()`` (a scalar loss)
    and its backward. Only what autograd needs runs in the backward: gradients of the tensors
    that require them (trainable parameters, inputs) and of what lies between."""
    with SavedActivations() as saved:
        fwd, loss = count_flops(forward)
    bwd, _ = count_flops(loss.backward)
    if params is not None:  # the graph is freed; drop the gradients (meta or not)
        for p in params:
            p.grad = None
    return fwd, bwd, saved.bytes

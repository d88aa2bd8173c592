"""The gradient alignment of Eq. 11-16 (perception vs generation loss) as mmengine optim wrappers.

The math sits first, as pure functions over flat gradient vectors; the wrappers below only collect
the two tasks' gradients, synchronise them across processes, call the math and hand the result to
the optimizer. ``grad_p`` and ``grad_g`` are the gradients of L_percept and L_genera over the
parameters that both losses reach, each flattened to one vector of shape [N].
"""
import functools
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Union

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from genrep.registry import OPTIM_WRAPPERS
from genrep.utils.objectives import OBJECTIVES

DEFAULT_TASK_WEIGHTS = dict(percept=0.7, genera=0.3)


def parallel_orthogonal_split(grad: torch.Tensor, other: torch.Tensor):
    """Split ``grad`` into its components parallel and orthogonal to ``other`` (Eq. 11 and Eq. 12).

    grad_par = (grad . other / ||other||^2) other and grad_perp = grad - grad_par. Eq. 11 is
    ``parallel_orthogonal_split(grad_g, grad_p)``, Eq. 12 is ``parallel_orthogonal_split(grad_p,
    grad_g)``. A zero ``other`` spans no direction: the parallel part is then zero and ``grad`` is
    all orthogonal (no 0/0).

    Args:
        grad (Tensor): [N], the gradient to decompose.
        other (Tensor): [N], the gradient it is decomposed against.

    Returns:
        tuple[Tensor, Tensor]: (parallel, orthogonal), each [N].
    """
    other_sq_norm = other.dot(other)
    nonzero = other_sq_norm > 0
    coefficient = torch.where(
        nonzero, grad.dot(other) / torch.where(nonzero, other_sq_norm, 1.0), 0.0)
    parallel = coefficient * other
    return parallel, grad - parallel


def gradient_cosine(grad_p: torch.Tensor, grad_g: torch.Tensor) -> torch.Tensor:
    """cos_sim = grad_p . grad_g / (||grad_p|| ||grad_g||) (Eq. 15).

    Defined as 0 when either gradient is zero (the angle is undefined; 0 says "no conflict and no
    agreement", and then alpha only multiplies parallel parts, which are zero, so the choice cannot
    change the aligned gradients). Clamped to [-1, 1] against rounding.

    Args:
        grad_p (Tensor): [N], gradient of L_percept.
        grad_g (Tensor): [N], gradient of L_genera.

    Returns:
        Tensor: [] cosine similarity.
    """
    norm_product = grad_p.norm() * grad_g.norm()
    nonzero = norm_product > 0
    cosine = torch.where(
        nonzero, grad_p.dot(grad_g) / torch.where(nonzero, norm_product, 1.0), 0.0)
    return cosine.clamp(-1.0, 1.0)


def retention_factor(cos_sim: torch.Tensor, damping_power: float = 2.0) -> torch.Tensor:
    """alpha = ((cos_sim + 1) / 2) ** k: the share of the parallel parts kept (text after Eq. 15).

    alpha = 1 at cos_sim = 1 (no damping), alpha -> 0 as cos_sim -> -1; k = ``damping_power``
    (paper: 2).

    Args:
        cos_sim (Tensor): [] cosine similarity of the two gradients, in [-1, 1].
        damping_power (float): k >= 0.

    Returns:
        Tensor: [] alpha in [0, 1].
    """
    return ((cos_sim + 1.0) / 2.0) ** damping_power


def aligned_gradient(grad: torch.Tensor, other: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """grad_aligned = grad_perp + alpha grad_par, split against ``other`` (Eq. 13 and Eq. 14).

    Eq. 13 is ``aligned_gradient(grad_g, grad_p, alpha)``, Eq. 14 is ``aligned_gradient(grad_p,
    grad_g, alpha)``.

    Args:
        grad (Tensor): [N], the task's gradient.
        other (Tensor): [N], the other task's gradient.
        alpha (Tensor): [] retention factor.

    Returns:
        Tensor: [N] aligned gradient.
    """
    parallel, orthogonal = parallel_orthogonal_split(grad, other)
    return orthogonal + alpha * parallel


@dataclass
class GradientAlignment:
    """The result of Eq. 16: ``gradient`` [N], and the ``cos_sim`` [] and ``alpha`` [] it used."""
    gradient: torch.Tensor
    cos_sim: torch.Tensor
    alpha: torch.Tensor


def symmetric_aligned_gradient(grad_p: torch.Tensor,
                               grad_g: torch.Tensor,
                               weight_p: float = 0.7,
                               weight_g: float = 0.3,
                               damping_power: float = 2.0) -> GradientAlignment:
    """grad_symmetric = w_p grad_p_aligned + w_g grad_g_aligned (Eq. 16, with Eq. 11-15).

    Args:
        grad_p (Tensor): [N], gradient of L_percept over the shared parameters.
        grad_g (Tensor): [N], gradient of L_genera over the same parameters.
        weight_p (float): w_p (paper: 0.7).
        weight_g (float): w_g (paper: 0.3).
        damping_power (float): k of alpha (paper: 2).

    Returns:
        GradientAlignment: the combined gradient [N], cos_sim [] and alpha [].
    """
    cos_sim = gradient_cosine(grad_p, grad_g)
    alpha = retention_factor(cos_sim, damping_power)
    gradient = (weight_p * aligned_gradient(grad_p, grad_g, alpha)
                + weight_g * aligned_gradient(grad_g, grad_p, alpha))
    return GradientAlignment(gradient, cos_sim, alpha)


_SHARDED_REFUSAL = (
    '{} cannot align gradients that are sharded across processes (FSDP, e.g. mmengine\'s '
    'FlexibleRunner with FSDPStrategy): Eq. 15 needs the cosine of the two whole task gradients '
    'and every rank would see only its shard. Train stage 2 with DDP (Runner, '
    'MMDistributedDataParallel), or use the plain OptimWrapper (no gradient alignment) under FSDP.')


def _is_sharded_parameter(param: torch.Tensor) -> bool:
    """An FSDP flat parameter (FSDP1) or a DTensor shard (FSDP2)."""
    return bool(getattr(param, '_is_flat_param', False)) or type(param).__name__ == 'DTensor' \
        or type(getattr(param, 'data', None)).__name__ == 'DTensor'


def _is_sharded(model: nn.Module) -> bool:
    """Whether ``model`` or one of its submodules is wrapped by FSDP (1 or 2)."""
    try:
        from torch.distributed import fsdp
    except ImportError:  # torch built without distributed
        return False
    wrappers = tuple(getattr(fsdp, name) for name in ('FullyShardedDataParallel', 'FSDPModule')
                     if hasattr(fsdp, name))
    return any(isinstance(module, wrappers) for module in model.modules())


@dataclass
class _TaskGradient:
    """One task's gradient over all trainable parameters: ``flat`` [N] (zeros where not reached) and
    ``reached`` [P] bool, one flag a parameter."""
    flat: torch.Tensor
    reached: torch.Tensor


@OPTIM_WRAPPERS.register_module()
class GradientAlignOptimWrapper(OptimWrapper):
    """OptimWrapper that steps on the aligned sum of the two task gradients (Eq. 16).

    Call ``update_params(dict(percept=loss_p, genera=loss_g))``. Each micro-batch, the wrapper takes
    each task's gradient over the trainable parameters of the optimizer with ``torch.autograd.grad``
    (one flat vector a task), averages it across processes, aligns the two over the parameters both
    losses reach, and accumulates the result into ``.grad``:

    - parameters both losses reach: ``symmetric_aligned_gradient`` (Eq. 11-16), with cos_sim and
      alpha computed over all of them together (one vector, as in the paper);
    - parameters one loss reaches: that loss's weighted gradient (w_p grad_p or w_g grad_g);
    - parameters neither reaches: ``.grad`` is left as it is (None stays None).

    ``cos_sim`` and ``alpha`` go to the message hub as ``train/grad_cos_sim`` and
    ``train/grad_alpha``. A plain tensor is a single loss and takes OptimWrapper's path unchanged
    (stage 1 training). Everything else is OptimWrapper's: ``accumulative_counts`` divides each task
    loss by the accumulation factor, each micro-batch is aligned on its own and the aligned
    gradients add up in ``.grad`` until ``should_update()``; ``step`` (with ``clip_grad``),
    ``zero_grad``, ``state_dict``, ``get_lr`` and ``optim_context`` (plus a check) are inherited.

    How the model hands over the losses: mmengine's ``BaseModel.train_step`` and
    ``MMDistributedDataParallel.train_step`` both run the forward inside ``optim_context(model)``
    and then call ``update_params(parsed_loss)`` with what the model's ``parse_losses`` returned. So
    a two-task model's ``parse_losses`` returns ``(dict(percept=..., genera=...), log_vars)`` and
    the stock train steps (single process or DDP) deliver the dict here; no custom model wrapper is
    needed.

    Distributed data parallel: each task's gradient is all-reduced exactly once, by this wrapper,
    before the alignment (the alignment is nonlinear, so aligning per-rank gradients and averaging
    afterwards would not equal the single-process result). DDP's own reducer never touches these
    gradients: ``torch.autograd.grad`` returns gradients instead of accumulating them, so the
    parameters' AccumulateGrad nodes, on which DDP's reducer hooks sit, never run (PyTorch documents
    that DDP does not reduce ``torch.autograd.grad``); tests/test_engine/test_gradient_align.py
    checks the 2-process result equals the 1-process one. ``optim_context`` keeps OptimWrapper's
    behaviour (``no_sync`` on accumulation iterations) so that a plain tensor loss is synchronised
    by DDP as usual. Each task's flat gradient and its per-parameter "reached" flags travel in one
    ``all_reduce`` so that every rank aligns the same average even when a rank's batch leaves some
    parameter unused; a parameter that no rank reached stays None. All-reduces happen on every
    micro-batch, also under accumulation. DDP with ``static_graph=True`` is refused: its first
    backward queues an all-reduce of ``.grad``. Sharded training (FSDP, mmengine's FlexibleRunner
    with FSDPStrategy) is refused too: each rank holds a shard of each gradient, and the cosine of
    Eq. 15 needs the whole vectors. ``detect_anomalous_params`` of
    MMDistributedDataParallel needs a tensor loss and cannot be used.

    The positional arguments are the parent wrapper's, in its order (OptimWrapper: ``optimizer``,
    ``accumulative_counts``, ``clip_grad``; AmpOptimWrapper: ``loss_scale``, ...), so that either
    wrapper can stand in for its mmengine parent; the alignment's own arguments are keyword-only.

    Args:
        *args: the parent wrapper's positional arguments.
        task_weights (dict, optional): keyword-only. ``dict(percept=w_p, genera=w_g)`` of Eq. 16.
            Defaults to ``dict(percept=0.7, genera=0.3)``.
        damping_power (float): keyword-only. k in alpha = ((cos_sim + 1) / 2) ** k. Defaults to 2.
        **kwargs: the parent wrapper's arguments: OptimWrapper's ``optimizer``,
            ``accumulative_counts`` and ``clip_grad``.
    """

    def __init__(self,
                 *args,
                 task_weights: Optional[Dict[str, float]] = None,
                 damping_power: float = 2.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        task_weights = dict(DEFAULT_TASK_WEIGHTS if task_weights is None else task_weights)
        if set(task_weights) != set(OBJECTIVES):
            raise ValueError(f'optim_wrapper.task_weights must have exactly the keys '
                             f'{OBJECTIVES}, got {sorted(task_weights)}')
        if damping_power < 0:
            raise ValueError(f'optim_wrapper.damping_power must be >= 0, got {damping_power}')
        self.task_weights = {task: float(task_weights[task]) for task in OBJECTIVES}
        self.damping_power = float(damping_power)

    def scale_loss(self, loss: Union[torch.Tensor, Mapping[str, torch.Tensor]]):
        """Divide the loss, or each task's loss, by the gradient accumulation factor."""
        if isinstance(loss, Mapping):
            return {task: super(GradientAlignOptimWrapper, self).scale_loss(value)
                    for task, value in loss.items()}
        return super().scale_loss(loss)

    def backward(self, loss: Union[torch.Tensor, Mapping[str, torch.Tensor]], **kwargs) -> None:
        """Accumulate the aligned gradient of ``dict(percept=..., genera=...)`` into ``.grad``, or
        back-propagate a single tensor loss as OptimWrapper does. Counts one iteration either
        way."""
        if not isinstance(loss, Mapping):
            super().backward(loss, **kwargs)
            return
        if set(loss) != set(OBJECTIVES):
            raise ValueError(f'{type(self).__name__}.update_params expects a dict with exactly '
                             f'the keys {OBJECTIVES} (what the model\'s parse_losses returns), '
                             f'got {sorted(loss)}')
        retain_last = kwargs.pop('retain_graph', False)
        if kwargs:
            raise TypeError(f'{type(self).__name__}.backward of a loss dict takes only '
                            f'retain_graph, got {sorted(kwargs)}')
        params = self._trainable_params()
        grad_p = self._task_gradient(loss['percept'], params, retain_graph=True)
        grad_g = self._task_gradient(loss['genera'], params, retain_graph=retain_last)
        # Average over processes and undo the AMP loss scale BEFORE aligning.
        scale = self._gradient_scale()
        divisor = get_world_size() * scale
        if divisor != 1.0:
            grad_p.flat.div_(divisor)
            grad_g.flat.div_(divisor)
        numels = torch.tensor([p.numel() for p in params], device=grad_p.flat.device)
        combined = self._combine(grad_p, grad_g, numels)
        self._accumulate_into_grad(combined, grad_p.reached | grad_g.reached, params, scale)
        self._inner_count += 1

    @contextmanager
    def optim_context(self, model: nn.Module):
        """OptimWrapper's context (``no_sync`` on accumulation iterations; autocast in the AMP
        subclass), refusing a DDP model with ``static_graph=True`` and a sharded (FSDP) model (see
        the class docstring)."""
        if _is_sharded(model):
            raise NotImplementedError(_SHARDED_REFUSAL.format(type(self).__name__))
        if getattr(model, 'static_graph', False):
            raise ValueError(f'{type(self).__name__} computes gradients with torch.autograd.grad '
                             'and all-reduces them itself; DDP with static_graph=True would '
                             'all-reduce .grad on its first backward. Set '
                             'model_wrapper_cfg.static_graph=False.')
        with super().optim_context(model):
            yield

    def _trainable_params(self) -> List[nn.Parameter]:
        params, seen = [], set()
        for group in self.optimizer.param_groups:
            for param in group['params']:
                if param.requires_grad and id(param) not in seen:
                    seen.add(id(param))
                    params.append(param)
        if any(_is_sharded_parameter(param) for param in params):
            raise NotImplementedError(_SHARDED_REFUSAL.format(type(self).__name__))
        if not params:
            raise ValueError(f'{type(self).__name__}: the optimizer holds no trainable parameter')
        return params

    def _loss_for_gradient(self, loss: torch.Tensor) -> torch.Tensor:
        """The tensor whose gradient is taken; the AMP subclass multiplies by the loss scale."""
        return loss

    def _gradient_scale(self) -> float:
        """The factor between the gradients of ``_loss_for_gradient`` and the true ones."""
        return 1.0

    def _task_gradient(self, loss: torch.Tensor, params: List[nn.Parameter],
                       retain_graph: bool) -> _TaskGradient:
        """One task's gradient over ``params``, summed over processes with ONE all_reduce.

        The flat gradient [N] and the per-parameter reached flags [P] travel together, so every rank
        gets the same vector and the same reached set.
        """
        if loss.requires_grad:
            grads = torch.autograd.grad(
                self._loss_for_gradient(loss), params, retain_graph=retain_graph, allow_unused=True)
        else:  # a loss that reaches no parameter still takes part in the all_reduce
            grads = (None, ) * len(params)
        device = params[0].device
        dtype = functools.reduce(torch.promote_types, (p.dtype for p in params), torch.float32)
        pieces = [
            torch.zeros(p.numel(), device=device, dtype=dtype)
            if g is None else g.reshape(-1).to(device=device, dtype=dtype)
            for p, g in zip(params, grads)
        ]
        pieces.append(torch.tensor([g is not None for g in grads], device=device, dtype=dtype))
        packed = torch.cat(pieces)
        if get_world_size() > 1:
            dist.all_reduce(packed)
        return _TaskGradient(flat=packed[:-len(params)], reached=packed[-len(params):] > 0)

    def _combine(self, grad_p: _TaskGradient, grad_g: _TaskGradient,
                 numels: torch.Tensor) -> torch.Tensor:
        """The gradient to apply [N]: Eq. 16 where both tasks reach a parameter, the reaching task's
        weighted gradient where one does (the other's entries are zeros there)."""
        weight_p, weight_g = self.task_weights['percept'], self.task_weights['genera']
        shared_params = grad_p.reached & grad_g.reached
        if bool(shared_params.all()):
            alignment = symmetric_aligned_gradient(grad_p.flat, grad_g.flat, weight_p, weight_g,
                                                   self.damping_power)
            combined = alignment.gradient
        else:
            combined = weight_p * grad_p.flat + weight_g * grad_g.flat
            if not bool(shared_params.any()):
                return combined
            shared = torch.repeat_interleave(shared_params, numels)
            alignment = symmetric_aligned_gradient(grad_p.flat[shared], grad_g.flat[shared],
                                                   weight_p, weight_g, self.damping_power)
            combined[shared] = alignment.gradient
        cos_sim = float(alignment.cos_sim)
        if math.isfinite(cos_sim):  # an AMP overflow step is skipped; keep NaN out of the log
            self.message_hub.update_scalar('train/grad_cos_sim', cos_sim)
            self.message_hub.update_scalar('train/grad_alpha', float(alignment.alpha))
        return combined

    def _accumulate_into_grad(self, combined: torch.Tensor, reached: torch.Tensor,
                              params: List[nn.Parameter], scale: float) -> None:
        """Add ``combined * scale`` into the ``.grad`` of every parameter some task reached."""
        offset = 0
        for param, was_reached in zip(params, reached.tolist()):
            numel = param.numel()
            if was_reached:
                grad = combined[offset:offset + numel].view_as(param)
                if scale != 1.0:
                    grad = grad * scale
                if param.grad is None:
                    param.grad = torch.empty_like(param).copy_(grad)
                else:
                    param.grad.add_(grad.to(param.grad.dtype))
            offset += numel


@OPTIM_WRAPPERS.register_module()
class AmpGradientAlignOptimWrapper(GradientAlignOptimWrapper, AmpOptimWrapper):
    """GradientAlignOptimWrapper with mixed precision: mmengine's AmpOptimWrapper plus alignment.

    A subclass rather than an ``amp=True`` flag, so that everything mmengine knows about AMP comes
    unchanged from AmpOptimWrapper: its config (``loss_scale``, ``dtype``, ``use_fsdp``), autocast
    in ``optim_context``, the GradScaler in ``step`` (unscale, skip on inf/nan, scale update,
    unscale before ``clip_grad``) and in ``state_dict``/``load_state_dict``; ``isinstance(w,
    AmpOptimWrapper)`` holds. Like AmpOptimWrapper it needs a CUDA/NPU/MLU/MUSA device. Only two
    hooks change:

    - each task loss is multiplied by the GradScaler's scale before ``torch.autograd.grad``;
    - the flat task gradients are divided by that scale BEFORE the alignment, so Eq. 11-16, the task
      weights and the one-sided parts act on true gradients.

    The aligned gradient is multiplied back by the scale (exact: the scale is a power of two) when
    it goes into ``.grad``: GradScaler records its inf/nan check only in its own ``unscale_``, so
    handing it scaled gradients is how ``step`` stays GradScaler's public path. A non-finite task
    gradient makes the aligned one non-finite, so the scaler skips that step and backs off its
    scale.

    Args:
        **kwargs: GradientAlignOptimWrapper's and AmpOptimWrapper's arguments.
    """

    def _loss_for_gradient(self, loss: torch.Tensor) -> torch.Tensor:
        return self.loss_scaler.scale(loss)

    def _gradient_scale(self) -> float:
        return float(self.loss_scaler.get_scale())

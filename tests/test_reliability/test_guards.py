"""No silent loss: NonFiniteCheckHook stops the run at the first non-finite gradient, update or
loss, before any checkpoint holds it; AMP overflows (and ``action='skip'``) are skipped and
counted."""
import math

import pytest
import torch
from mmengine.optim import AmpOptimWrapper
from toy_runner import make_runner

from genrep.engine import NonFiniteCheckHook
from genrep.engine.guards import _all_finite

GUARD = dict(finite_check=dict(type='genrep.NonFiniteCheckHook'))


def test_infinite_learning_rate_stops_at_the_first_step(tmp_path):
    """lr=inf: the first step's gradients are finite, the update it makes is not."""
    runner = make_runner(tmp_path, 'guard_lr_inf', lr=math.inf, hooks=GUARD)
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    message = str(error.value)
    assert 'iteration 1' in message and 'linear.weight' in message and 'inf' in message, message
    assert not list(tmp_path.glob('*.pth')) and not (tmp_path / 'last_checkpoint').exists()


def test_non_finite_gradient_is_never_applied(tmp_path):
    runner = make_runner(tmp_path, 'guard_nan_grad', hooks=GUARD)
    before = {}

    def poison(optimizer, args, kwargs):  # registered first, so it runs before the guard's check
        before.update({k: v.clone() for k, v in runner.model.state_dict().items()})
        if runner.iter == 2:
            runner.model.linear.weight.grad[0, 0] = math.nan

    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.optim_wrapper.optimizer.register_step_pre_hook(poison)
    with pytest.raises(FloatingPointError, match=r'non-finite gradient in 1 of 2 parameters '
                                                 r'\(linear.weight\) at iteration 3'):
        runner.train()
    for key, value in runner.model.state_dict().items():
        assert torch.equal(value, before[key]), key  # the step of iteration 3 did not happen
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth']


def test_skip_action_counts_and_stops_after_too_many(tmp_path):
    runner = make_runner(tmp_path, 'guard_skip',
                         hooks=dict(finite_check=dict(type='genrep.NonFiniteCheckHook',
                                                      action='skip', max_consecutive_skips=2)))
    bad_iterations = {3, 7, 8, 9}
    changed = []

    def poison(optimizer, args, kwargs):
        changed.append(runner.iter + 1)
        if runner.iter + 1 in bad_iterations:
            runner.model.linear.bias.grad[0] = math.inf

    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.optim_wrapper.optimizer.register_step_pre_hook(poison)
    with pytest.raises(FloatingPointError, match='3 steps in a row skipped'):
        runner.train()
    assert runner.message_hub.get_info('non_finite_skipped_steps') == 4
    assert runner.iter + 1 == 9


def test_amp_overflow_is_skipped_and_counted(tmp_path, monkeypatch):
    """mmengine's AmpOptimWrapper insists on an accelerator; on CPU it gets torch's CPU GradScaler,
    which has the same public API. An overflowing gradient makes the scaler skip the step: counted,
    and training goes on."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    runner = make_runner(tmp_path, 'guard_amp', hooks=GUARD, optim_wrapper=dict(
        type='AmpOptimWrapper', dtype='bfloat16', optimizer=dict(type='SGD', lr=0.1)))
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    assert isinstance(runner.optim_wrapper, AmpOptimWrapper)
    runner.optim_wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0**8)
    unscale = runner.optim_wrapper.loss_scaler.unscale_

    def overflow_at_4(optimizer):
        if runner.iter + 1 == 4:
            runner.model.linear.bias.grad[0] = math.inf
        return unscale(optimizer)

    runner.optim_wrapper.loss_scaler.unscale_ = overflow_at_4
    runner.train()
    assert runner.message_hub.get_info('non_finite_skipped_steps') == 1
    assert runner.iter == 12 and torch.isfinite(runner.model.linear.weight).all()


def test_hook_arguments_checked():
    with pytest.raises(ValueError, match="'raise', 'skip'"):
        NonFiniteCheckHook(action='ignore')


def test_all_finite_takes_empty_shards():
    """FSDP leaves some processes' shards empty; the max-norm of nothing has no value."""
    assert _all_finite([]) and _all_finite([torch.empty(0), torch.ones(2)])
    assert not _all_finite([torch.empty(0), torch.tensor([1.0, math.nan])])
    assert not _all_finite([torch.tensor([-math.inf])])

"""GradientAlignOptimWrapper (Eq. 11-16), each result checked against a hand computation here.

Losses linear in the parameters (loss = c . theta) have the gradient c exactly, so a test picks the
two task gradients by hand; SGD with lr=1 from theta = 0 turns the applied gradient g into theta =
-g.
"""
import io
import math
import os.path as osp
import socket
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.optim import AmpOptimWrapper, OptimWrapper, build_optim_wrapper

from genrep.engine import optim_wrappers
from genrep.engine import (AmpGradientAlignOptimWrapper, GradientAlignOptimWrapper,
                           parallel_orthogonal_split, symmetric_aligned_gradient)
from genrep.registry import OPTIM_WRAPPERS

# Hand computations with k = 2, w_p = 0.7, w_g = 0.3: (g_p, g_g, cos_sim, alpha, Eq. 16 result).
# generic: g_p.g_g = 20, |g_p| = |g_g| = 5, cos = 0.8, alpha = 0.9^2 = 0.81;
#   g_p_par = 20/25 (0, 5) = (0, 4), g_p_perp = (3, 0)             -> g_p_al = (3, 3.24)
#   g_g_par = 20/25 (3, 4) = (2.4, 3.2), g_g_perp = (-2.4, 1.8)     -> g_g_al = (-0.456, 4.392)
#   0.7 (3, 3.24) + 0.3 (-0.456, 4.392) = (1.9632, 3.5856)
# obtuse: g_p.g_g = -20, cos = -0.8, alpha = 0.1^2 = 0.01;
#   g_p_par = -20/25 (0, -5) = (0, 4), g_p_perp = (3, 0)            -> g_p_al = (3, 0.04)
#   g_g_par = -20/25 (3, 4) = (-2.4, -3.2), g_g_perp = (2.4, -1.8)  -> g_g_al = (2.376, -1.832)
#   0.7 (3, 0.04) + 0.3 (2.376, -1.832) = (2.8128, -0.5216)
# parallel: all parallel, alpha = 1 -> 0.7 (1, 2) + 0.3 (2, 4) = (1.3, 2.6)
# orthogonal: parallel parts are zero, so alpha = 0.25 changes nothing -> (0.7, 0.9)
# opposite: cos = -1, alpha = 0, perpendicular parts are zero -> (0, 0)
# zero: cos := 0 (alpha = 0.25), projections onto / of a zero vector are zero -> 0.3 (1, 2)
CASES = {
    'parallel': ((1., 2.), (2., 4.), 1.0, 1.0, (1.3, 2.6)),
    'orthogonal': ((1., 0.), (0., 3.), 0.0, 0.25, (0.7, 0.9)),
    'opposite': ((1., 1.), (-2., -2.), -1.0, 0.0, (0.0, 0.0)),
    'generic': ((3., 4.), (0., 5.), 0.8, 0.81, (1.9632, 3.5856)),
    'obtuse': ((3., 4.), (0., -5.), -0.8, 0.01, (2.8128, -0.5216)),
    'zero_percept': ((0., 0.), (1., 2.), 0.0, 0.25, (0.3, 0.6)),
    'both_zero': ((0., 0.), (0., 0.), 0.0, 0.25, (0.0, 0.0)),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_symmetric_aligned_gradient_by_hand(case):
    grad_p, grad_g, cos_sim, alpha, expected = CASES[case]
    result = symmetric_aligned_gradient(
        torch.tensor(grad_p, dtype=torch.float64), torch.tensor(grad_g, dtype=torch.float64))
    assert torch.isfinite(result.gradient).all()
    assert float(result.cos_sim) == pytest.approx(cos_sim, abs=1e-12)
    assert float(result.alpha) == pytest.approx(alpha, abs=1e-12)
    torch.testing.assert_close(result.gradient, torch.tensor(expected, dtype=torch.float64))


def test_parallel_orthogonal_split_by_hand():
    parallel, orthogonal = parallel_orthogonal_split(torch.tensor([3., 4.]), torch.tensor([0., 5.]))
    torch.testing.assert_close(parallel, torch.tensor([0., 4.]))
    torch.testing.assert_close(orthogonal, torch.tensor([3., 0.]))
    parallel, orthogonal = parallel_orthogonal_split(torch.tensor([3., 4.]), torch.zeros(2))
    torch.testing.assert_close(parallel, torch.zeros(2))
    torch.testing.assert_close(orthogonal, torch.tensor([3., 4.]))


class LinearTasks(nn.Module):
    """Parameters start at 0; each task loss is linear, so its gradients are the coefficients given.

    ``shared_a`` and ``shared_b`` split the shared 2-vector across two parameters (the alignment
    must flatten both into one vector); ``percept_only`` / ``genera_only`` are reached by one loss;
    ``unused`` by neither.
    """
    names = ('shared_a', 'shared_b', 'percept_only', 'genera_only', 'unused')

    def __init__(self):
        super().__init__()
        for name, size in zip(self.names, (1, 1, 2, 1, 1)):
            self.register_parameter(name, nn.Parameter(torch.zeros(size)))

    def losses(self, grad_p, grad_g, percept_only=(1., -2.), genera_only=(4., )):
        shared = torch.cat([self.shared_a, self.shared_b])
        loss_p = (torch.tensor(grad_p) * shared).sum() + (
            torch.tensor(percept_only) * self.percept_only).sum()
        loss_g = (torch.tensor(grad_g) * shared).sum() + (
            torch.tensor(genera_only) * self.genera_only).sum()
        return dict(percept=loss_p, genera=loss_g)

    def values(self):
        return {name: getattr(self, name).detach().clone() for name in self.names}


def record_grads_at_step(wrapper, model):
    """Keep a copy of every ``.grad`` (or None) each time the optimizer steps."""
    records, step = [], wrapper.optimizer.step

    def recording_step(*args, **kwargs):
        grads = {n: getattr(model, n).grad for n in model.names}
        records.append({n: None if g is None else g.clone() for n, g in grads.items()})
        return step(*args, **kwargs)

    wrapper.optimizer.step = recording_step
    return records


def make_wrapper(model, cls=GradientAlignOptimWrapper, lr=1.0, **kwargs):
    return cls(optimizer=torch.optim.SGD(model.parameters(), lr=lr), **kwargs)


def test_wrapper_applies_aligned_and_one_sided_gradients():
    model = LinearTasks()
    wrapper = make_wrapper(model)
    records = record_grads_at_step(wrapper, model)
    wrapper.update_params(model.losses((3., 4.), (0., 5.)))
    grads = records[0]
    # shared: the generic case; one-sided: 0.7 (1, -2) and 0.3 (4); unused: no gradient at all.
    torch.testing.assert_close(torch.cat([grads['shared_a'], grads['shared_b']]),
                               torch.tensor([1.9632, 3.5856]))
    torch.testing.assert_close(grads['percept_only'], torch.tensor([0.7, -1.4]))
    torch.testing.assert_close(grads['genera_only'], torch.tensor([1.2]))
    assert grads['unused'] is None
    values = model.values()
    torch.testing.assert_close(values['shared_a'], torch.tensor([-1.9632]))
    torch.testing.assert_close(values['unused'], torch.zeros(1))
    assert all(getattr(model, n).grad is None for n in model.names)  # zero_grad after the step


def test_damping_power_zero_is_the_weighted_sum():
    """k = 0 keeps alpha = 1: no damping, so the step is w_p grad_p + w_g grad_g (the joint step
    without gradient alignment of Table 8), here on opposite shared gradients."""
    model = LinearTasks()
    wrapper = make_wrapper(model, damping_power=0)
    records = record_grads_at_step(wrapper, model)
    wrapper.update_params(model.losses((3., -4.), (-3., 4.)))
    torch.testing.assert_close(torch.cat([records[0]['shared_a'], records[0]['shared_b']]),
                               torch.tensor([0.7 * 3 - 0.3 * 3, -0.7 * 4 + 0.3 * 4]))


def test_cos_sim_and_alpha_reach_the_message_hub():
    hub = MessageHub.get_instance('test_gradient_align_hub')
    model = LinearTasks()
    wrapper = make_wrapper(model)
    assert wrapper.message_hub is hub
    wrapper.update_params(model.losses((3., 4.), (0., 5.)))
    assert hub.get_scalar('train/grad_cos_sim').current() == pytest.approx(0.8)
    assert hub.get_scalar('train/grad_alpha').current() == pytest.approx(0.81)


def test_accumulation_steps_on_mean_of_aligned_micro_batches():
    model = LinearTasks()
    wrapper = make_wrapper(model, accumulative_counts=2)
    records = record_grads_at_step(wrapper, model)
    wrapper.update_params(model.losses((3., 4.), (0., 5.)))  # generic -> (1.9632, 3.5856)
    assert not records and wrapper.inner_count == 1
    torch.testing.assert_close(model.values()['shared_a'], torch.zeros(1))
    torch.testing.assert_close(model.shared_a.grad, torch.tensor([1.9632 / 2]))
    wrapper.update_params(model.losses((1., 0.), (0., 3.)))  # orthogonal -> (0.7, 0.9)
    assert len(records) == 1
    torch.testing.assert_close(torch.cat([records[0]['shared_a'], records[0]['shared_b']]),
                               torch.tensor([(1.9632 + 0.7) / 2, (3.5856 + 0.9) / 2]))
    torch.testing.assert_close(records[0]['percept_only'], torch.tensor([0.7, -1.4]))
    assert records[0]['unused'] is None


def test_plain_tensor_loss_behaves_like_optim_wrapper():
    torch.manual_seed(0)
    ours, reference = nn.Linear(3, 2), nn.Linear(3, 2)
    reference.load_state_dict(ours.state_dict())
    wrappers = [cls(optimizer=torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
                    accumulative_counts=2)
                for cls, m in ((GradientAlignOptimWrapper, ours), (OptimWrapper, reference))]
    for inputs in torch.randn(4, 5, 3):
        for wrapper, model in zip(wrappers, (ours, reference)):
            wrapper.update_params(model(inputs).square().mean())
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)


def test_state_dict_round_trip():
    model, twin = LinearTasks(), LinearTasks()
    first = GradientAlignOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        task_weights=dict(percept=0.6, genera=0.4))
    first.update_params(model.losses((3., 4.), (0., 5.)))
    buffer = io.BytesIO()  # through bytes, as a checkpoint does (loading does not copy tensors)
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer)
    assert any('momentum_buffer' in s for s in state['state'].values())
    twin.load_state_dict(model.state_dict())
    second = GradientAlignOptimWrapper(
        optimizer=torch.optim.SGD(twin.parameters(), lr=0.5, momentum=0.9),
        task_weights=dict(percept=0.6, genera=0.4))
    second.load_state_dict(state)
    assert second.get_lr() == first.get_lr() == {'lr': [0.1]}
    for wrapper, m in ((first, model), (second, twin)):
        wrapper.update_params(m.losses((1., 0.), (0., 3.)))
    for name in model.names:
        torch.testing.assert_close(getattr(model, name), getattr(twin, name))


def test_built_from_config_in_any_scope_and_checks_keys():
    model = nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, dict(
        type='genrep.GradientAlignOptimWrapper', optimizer=dict(type='SGD', lr=0.1),
        damping_power=1, accumulative_counts=2))
    assert isinstance(wrapper, GradientAlignOptimWrapper) and wrapper.damping_power == 1.0
    assert OPTIM_WRAPPERS.get('AmpGradientAlignOptimWrapper') is AmpGradientAlignOptimWrapper
    with pytest.raises(ValueError, match='task_weights'):
        make_wrapper(model, task_weights=dict(percept=1.0))
    with pytest.raises(ValueError, match='percept'):
        wrapper.update_params(dict(percept=model.weight.sum(), other=model.bias.sum()))
    model.static_graph = True  # what DDP(static_graph=True) carries
    with pytest.raises(ValueError, match='static_graph'):
        with wrapper.optim_context(model):
            pass


def test_amp_aligns_unscaled_gradients_and_skips_overflow(monkeypatch):
    # mmengine's AmpOptimWrapper insists on an accelerator and builds a CUDA GradScaler; the test
    # runs on CPU tensors and gives the wrapper torch's CPU GradScaler (same public API).
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    model = LinearTasks()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        wrapper = make_wrapper(model, cls=AmpGradientAlignOptimWrapper,
                               loss_scale=dict(init_scale=2.0**14))  # dynamic scaling
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0**14)
    assert isinstance(wrapper, AmpOptimWrapper) and wrapper.loss_scaler.is_enabled()
    aligned_inputs = []
    align = optim_wrappers.symmetric_aligned_gradient

    def spying_align(grad_p, grad_g, *args):
        aligned_inputs.append((grad_p.clone(), grad_g.clone()))
        return align(grad_p, grad_g, *args)

    monkeypatch.setattr(optim_wrappers, 'symmetric_aligned_gradient', spying_align)
    records = record_grads_at_step(wrapper, model)
    wrapper.update_params(model.losses((3., 4.), (0., 5.)))
    # The alignment saw the true gradients, not 2^14 times them, and so did the one-sided parts.
    torch.testing.assert_close(aligned_inputs[0][0], torch.tensor([3., 4.]))
    torch.testing.assert_close(aligned_inputs[0][1], torch.tensor([0., 5.]))
    torch.testing.assert_close(torch.cat([records[0]['shared_a'], records[0]['shared_b']]),
                               torch.tensor([1.9632, 3.5856]))
    torch.testing.assert_close(records[0]['genera_only'], torch.tensor([1.2]))
    torch.testing.assert_close(model.values()['percept_only'], torch.tensor([-0.7, 1.4]))
    assert 'loss_scaler' in wrapper.state_dict()

    # An overflow in a one-sided part alone: the GradScaler skips the step and halves its scale.
    before, scale = model.values(), wrapper.loss_scaler.get_scale()
    wrapper.update_params(model.losses((3., 4.), (0., 5.), genera_only=(math.inf, )))
    assert len(records) == 1
    for name, value in model.values().items():
        torch.testing.assert_close(value, before[name])
    assert wrapper.loss_scaler.get_scale() == scale / 2


class TwoTaskToy(BaseModel):
    """A shared trunk, a head per task and a module neither loss uses; ``parse_losses`` returns the
    per-task dict the wrapper takes, so mmengine's stock train steps hand it over."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(4, 3)
        self.percept_head = nn.Linear(3, 2)
        self.genera_head = nn.Linear(3, 4)
        self.unused = nn.Linear(2, 2)

    def forward(self, inputs, targets, mode='loss'):
        features = torch.tanh(self.trunk(inputs))
        return dict(loss_percept=(self.percept_head(features) - targets).square().mean(),
                    loss_genera=(self.genera_head(features) - inputs).square().mean())

    def parse_losses(self, losses):
        _, log_vars = super().parse_losses(losses)
        return dict(percept=losses['loss_percept'], genera=losses['loss_genera']), log_vars


DDP_SCENARIOS = (dict(find_unused_parameters=False, accumulative_counts=1),
                 dict(find_unused_parameters=True, accumulative_counts=2))


def train_toy(scenario, rank=0, world_size=1):
    """Two train steps of TwoTaskToy on fixed batches of 8; a rank of ``world_size`` takes its
    slice. Returns the final parameters and the sizes of the all_reduce calls of each step."""
    torch.manual_seed(0)
    model = TwoTaskToy()
    batches = [dict(inputs=torch.randn(8, 4), targets=torch.randn(8, 2)) for _ in range(2)]
    wrapper = GradientAlignOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9),
        accumulative_counts=scenario['accumulative_counts'])
    if world_size > 1:
        model = MMDistributedDataParallel(
            module=model, find_unused_parameters=scenario['find_unused_parameters'])
    share = 8 // world_size
    all_reduce_sizes = []
    for batch in batches:
        part = {k: v[rank * share:(rank + 1) * share] for k, v in batch.items()}
        all_reduce_sizes.append([])
        real_all_reduce = dist.all_reduce
        dist.all_reduce = lambda tensor, *a, **k: (all_reduce_sizes[-1].append(tensor.numel()),
                                                  real_all_reduce(tensor, *a, **k))[1]
        try:
            model.train_step(part, wrapper)
        finally:
            dist.all_reduce = real_all_reduce
    module = model.module if world_size > 1 else model
    return {k: v.detach().clone() for k, v in module.state_dict().items()}, all_reduce_sizes


def ddp_worker(rank, world_size, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=world_size)
    try:
        results = [train_toy(scenario, rank, world_size) for scenario in DDP_SCENARIOS]
        torch.save(results, osp.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_process_ddp_equals_one_process_on_whole_batch(tmp_path):
    """Per-task gradients are averaged over ranks BEFORE the (nonlinear) alignment, each exactly
    once, and DDP's own reducer adds nothing: 2 ranks x 4 samples give the 1 x 8 update."""
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    num_params, num_elements = 8, 3 * 4 + 3 + 2 * 3 + 2 + 4 * 3 + 4 + 2 * 2 + 2
    torch.manual_seed(0)
    initial = TwoTaskToy().state_dict()
    for scenario, reference, *ranks in zip(
            DDP_SCENARIOS, [train_toy(s)[0] for s in DDP_SCENARIOS],
            *[torch.load(tmp_path / f'rank{r}.pth') for r in range(2)]):
        for params, all_reduce_sizes in ranks:
            assert all_reduce_sizes == [[num_elements + num_params] * 2] * 2, scenario
            assert not torch.equal(params['trunk.weight'], initial['trunk.weight']), scenario
            assert torch.equal(params['unused.weight'], initial['unused.weight']), scenario
            for name, value in reference.items():
                torch.testing.assert_close(params[name], value, msg=f'{scenario} {name}')


def test_positional_arguments_are_the_parent_wrappers(monkeypatch):
    """The wrappers stand in for OptimWrapper / AmpOptimWrapper: positional arguments mean what they
    mean there (issue 11: ``GradientAlignOptimWrapper(optim, 3)`` put 3 into ``task_weights``, and
    ``AmpGradientAlignOptimWrapper('dynamic', optimizer=...)`` raised 'multiple values')."""
    import inspect
    for cls in (GradientAlignOptimWrapper, AmpGradientAlignOptimWrapper):
        params = inspect.signature(cls.__init__).parameters
        assert params['task_weights'].kind is inspect.Parameter.KEYWORD_ONLY, cls
        assert params['damping_power'].kind is inspect.Parameter.KEYWORD_ONLY, cls

    model = nn.Linear(2, 2)
    ours = GradientAlignOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), 3)
    reference = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), 3)
    assert ours._accumulative_counts == reference._accumulative_counts == 3
    assert ours.task_weights == dict(percept=0.7, genera=0.3) and ours.damping_power == 2.0
    clipped = GradientAlignOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), 2,
                                        dict(max_norm=1.0), damping_power=1)
    assert clipped.clip_grad_kwargs == dict(max_norm=1.0) and clipped.damping_power == 1.0
    with pytest.raises(TypeError):
        GradientAlignOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), 1, None,
                                  dict(percept=0.5, genera=0.5))

    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch warns that CUDA is absent for the CUDA GradScaler
        amp = AmpGradientAlignOptimWrapper('dynamic', optimizer=torch.optim.SGD(
            model.parameters(), lr=0.1), task_weights=dict(percept=0.6, genera=0.4))
        static = AmpGradientAlignOptimWrapper(512.0, 'float16', optimizer=torch.optim.SGD(
            model.parameters(), lr=0.1), accumulative_counts=2)
        stock = AmpOptimWrapper(512.0, 'float16', optimizer=torch.optim.SGD(
            model.parameters(), lr=0.1), accumulative_counts=2)
    assert amp.task_weights == dict(percept=0.6, genera=0.4)
    assert isinstance(amp.loss_scaler, torch.amp.GradScaler)
    assert static.cast_dtype == stock.cast_dtype == torch.float16
    assert static._accumulative_counts == 2


def test_sharded_gradients_are_refused():
    """FSDP shards each gradient across ranks; Eq. 15's cosine needs the whole vectors."""
    from torch.distributed.fsdp import FSDPModule
    model = LinearTasks()
    wrapper = make_wrapper(model)
    model.shared_a._is_flat_param = True  # what FSDP1's FlatParameter carries
    with pytest.raises(NotImplementedError, match='sharded across processes'):
        wrapper.update_params(model.losses((3., 4.), (0., 5.)))

    holder = nn.Module()
    holder.layer = nn.Linear(2, 2)
    # FSDP2's fully_shard swaps a module's class for such a subclass.
    holder.layer.__class__ = type('FSDPLinear', (FSDPModule, nn.Linear), {})
    with pytest.raises(NotImplementedError, match='Train stage 2 with DDP'):
        with make_wrapper(holder).optim_context(holder):
            pass

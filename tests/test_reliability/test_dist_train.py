"""tools/dist_train.sh with 2 processes equals one process with the same total batch, for the
GenRep stages whose training step draws random numbers (issue 11), run as a user runs them.

Both runs: 24 Fashion-MNIST images, no augmentation (each rank would draw its own flips), SGD with
momentum (Adam divides by the gradient's running scale, which turns summation-order noise in
near-zero gradients into visible steps), 3 iterations of a global batch of 8: 2 processes x 4 on
CPU (gloo, genrep.compat) against 1 process x 8. What makes them equal, beside DDP's gradient
average: every random draw is keyed by (seed, iteration, sample_idx, stream)
(genrep/models/sample_randomness.py), the distilled images are the first ``distill_images`` of the
global batch and the distillation divisor is summed over processes (genrep/models/genrep.py,
distillation.py); in stage 2 GradientAlignOptimWrapper all-reduces both task gradients before the
cosine of Eq. 15 (genrep/engine/optim_wrappers.py).
"""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT, output_tail
from data_fixtures import write_fashion_mnist

STAGE1 = 'tests/data/configs/fmnist_genrep_tiny_stage1.py'
STAGE2 = 'tests/data/configs/fmnist_genrep_tiny_stage2.py'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def no_flip_config(tmp_path, base, extra=''):
    config = tmp_path / f'no_flip_{osp.basename(base)}'
    config.write_text(f"_base_ = ['{osp.join(REPO_ROOT, base)}']\n"
                      'train_dataloader = dict(dataset=dict(indices=None, pipeline=['
                      "dict(type='mmcv.Pad', size=(32, 32), pad_val=0), "
                      "dict(type='PackInputs')]))\n" + extra)
    return config


def train_one_and_two(tmp_path, config, data):
    """(weights of 2 processes x batch 4, weights of 1 process x batch 8), after 3 iterations."""
    options = [f'{loader}.dataset.data_root={data}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += ['optim_wrapper.optimizer.type=SGD', 'optim_wrapper.optimizer.lr=0.05',
                'optim_wrapper.optimizer.momentum=0.9', 'optim_wrapper.optimizer.weight_decay=0',
                'train_cfg.val_interval=2']  # one epoch: no validation
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1')
    two = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
                          str(tmp_path / 'two'), '--cfg-options', *options], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=900, env=env)
    assert two.returncode == 0, output_tail(two)
    assert "uses the 'gloo' backend" in two.stderr
    one = subprocess.run([sys.executable, 'tools/train.py', str(config), '--work-dir',
                          str(tmp_path / 'one'), '--cfg-options', *options,
                          'train_dataloader.batch_size=8'], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=900, env=env)
    assert one.returncode == 0, output_tail(one)
    first = torch.load(tmp_path / 'two' / 'epoch_1.pth', weights_only=True)
    second = torch.load(tmp_path / 'one' / 'epoch_1.pth', weights_only=True)
    assert first['meta']['iter'] == second['meta']['iter'] == 3
    return first['state_dict'], second['state_dict']


def assert_equal_weights(two, one, atol):
    assert two.keys() == one.keys()
    worst = max((two[k].float() - one[k].float()).abs().max().item() for k in one
                if one[k].is_floating_point())
    print(f'max |diff| of the weights, 2 processes vs 1: {worst:.3g}')
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=0, atol=atol, msg=key)
    return worst


@pytest.mark.slow
def test_dist_train_stage1_two_processes_equals_one(tmp_path):
    """Stage 1 (CE + L_gen_distil, distill_images=2 of the global batch of 8, so rank 0 distils its
    first image and rank 1 its first, the global images 0 and 1; the teacher's 4-step chain draws
    its noise per image). Measured max |diff| 2.1e-8 (float32 summation order); tolerance 1e-6.
    Before the per-sample draws (each rank distilled 2 images with its own noise): 4.8e-3."""
    data = write_fashion_mnist(tmp_path / 'data', num_train=24, num_test=8)
    two, one = train_one_and_two(tmp_path, no_flip_config(tmp_path, STAGE1), data)
    assert_equal_weights(two, one, atol=1e-6)


@pytest.mark.slow
def test_dist_train_stage2_two_processes_equals_one(tmp_path):
    """Stage 2 (Eq. 5 and Eq. 10 with label dropout, the timestep and the noise drawn per sample,
    the semantic EMA, the gradient alignment of Eq. 11-16 on all-reduced task gradients), from
    scratch, without the generation evaluation hook. Measured max |diff| 6.0e-8; tolerance 1e-6.
    Before the per-sample draws (each rank its own dropout, timesteps and noise): 4.1e-3.
    The EMA semantic denoiser and the adjuster are compared too."""
    data = write_fashion_mnist(tmp_path / 'data', num_train=24, num_test=8)
    config = no_flip_config(tmp_path, STAGE2,
                            "custom_hooks = [dict(type='genrep.SemanticEMAHook', momentum=0.9)]\n")
    two, one = train_one_and_two(tmp_path, config, data)
    assert any(k.startswith('semantic_denoiser.') for k in one)
    assert any(k.startswith('semantic_noise.') for k in one)
    assert_equal_weights(two, one, atol=1e-6)


# Sharded training (FSDP through mmengine's FlexibleRunner and FSDPStrategy).

FSDP_TINY = 'tests/data/configs/fmnist_genrep_tiny_stage0_fsdp.py'
FSDP_PAPER = 'configs/genrep/imagenet256_dit_fsdp.py'


def test_fsdp_paper_config_is_a_flexible_runner_with_the_plain_wrapper():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, FSDP_PAPER))
    assert cfg.runner_type == 'FlexibleRunner' and cfg.strategy.type == 'FSDPStrategy'
    assert cfg.model.stage == 0 and cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.strategy.model_wrapper.auto_wrap_policy.type == 'genrep.size_based_auto_wrap_policy'
    assert cfg.model.perception.backbone.denoiser.type == 'DiTDenoiser'


def test_fsdp_strategy_and_wrap_policy_build():
    """What FlexibleRunner builds before any process group: the strategy from the config, the
    registered auto-wrap policy (mmengine looks it up in the root FUNCTIONS registry)."""
    from mmengine.config import Config
    from mmengine.registry import FUNCTIONS, STRATEGIES
    from torch.distributed.fsdp import StateDictType
    from torch.distributed.fsdp.wrap import size_based_auto_wrap_policy
    import genrep.engine  # noqa: F401  (registers the policy)
    for path in (FSDP_PAPER, FSDP_TINY):
        cfg = Config.fromfile(osp.join(REPO_ROOT, path))
        strategy = STRATEGIES.build(cfg.strategy)
        assert strategy.state_dict_type == StateDictType.FULL_STATE_DICT, path
    with FUNCTIONS.switch_scope_and_registry(None):
        assert FUNCTIONS.get('genrep.size_based_auto_wrap_policy') is size_based_auto_wrap_policy


def fsdp_config_error(option, value):
    from mmengine.config import Config

    from genrep.engine.config_checks import ConfigError, check_sharded_training
    cfg = Config.fromfile(osp.join(REPO_ROOT, FSDP_TINY))
    cfg.merge_from_dict({option: value})
    with pytest.raises(ConfigError) as error:
        check_sharded_training(cfg, FSDP_TINY)
    return str(error.value)


def test_fsdp_config_refuses_the_gradient_alignment():
    message = fsdp_config_error('optim_wrapper.type', 'genrep.GradientAlignOptimWrapper')
    assert message.startswith(f"{FSDP_TINY}: optim_wrapper.type='genrep.GradientAlignOptim")
    assert 'needs the whole task gradients and FSDP shards them' in message


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU-only FSDP settings')
def test_fsdp_config_on_cpu_names_device_id_and_offload():
    assert "strategy.model_wrapper.device_id=0 on a machine without CUDA" in fsdp_config_error(
        'strategy.model_wrapper.device_id', 0)
    assert "strategy.state_dict_cfg='full' gathers the full state dict with offload_to_cpu" in \
        fsdp_config_error('strategy.state_dict_cfg', 'full')
    assert 'state_dict_cfg.state_dict_config gathers' in fsdp_config_error(
        'strategy.state_dict_cfg.state_dict_config.offload_to_cpu', True)


@pytest.mark.slow
def test_fsdp_two_processes_equals_one_plain_process(tmp_path):
    """tools/dist_train.sh on the tiny stage-0 FSDP config: 2 CPU processes (gloo), FSDP1 full
    sharding of the UNet (size-based auto wrap, use_orig_params) under FlexibleRunner, 3 SGD steps
    of 2 x 4 images, against the plain Runner with 1 process x 8 (runner_type='Runner'). The
    checkpoint holds the full, unsharded state dict with the model's own keys. Measured max |diff|
    1.5e-7 (FSDP reduce-scatters flat parameters: another summation order); tolerance 1e-6.
    torch 2.13.0+cpu, mmengine 0.10.7."""
    data = write_fashion_mnist(tmp_path / 'data', num_train=24, num_test=8)
    options = [f'{loader}.dataset.data_root={data}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1')
    two = subprocess.run(['bash', 'tools/dist_train.sh', FSDP_TINY, '2', '--work-dir',
                          str(tmp_path / 'fsdp'), '--cfg-options', *options], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=900, env=env)
    assert two.returncode == 0, output_tail(two)
    plain = tmp_path / 'plain.py'
    plain.write_text(f"_base_ = ['{osp.join(REPO_ROOT, FSDP_TINY)}']\nrunner_type = 'Runner'\n")
    one = subprocess.run([sys.executable, 'tools/train.py', str(plain), '--work-dir',
                          str(tmp_path / 'one'), '--cfg-options', *options,
                          'train_dataloader.batch_size=8'], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=900, env=env)
    assert one.returncode == 0, output_tail(one)
    import genrep  # noqa: F401  (the checkpoint globals of genrep.compat)
    sharded = torch.load(tmp_path / 'fsdp' / 'epoch_1.pth', weights_only=True)
    whole = torch.load(tmp_path / 'one' / 'epoch_1.pth', weights_only=True)
    assert sharded['meta']['iter'] == whole['meta']['iter'] == 3
    assert_equal_weights(sharded['state_dict'], whole['state_dict'], atol=1e-6)

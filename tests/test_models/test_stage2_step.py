"""The stage-2 step computes what it computed before its cost was cut (issue 23, part 4).

Each saving is checked against the code path it replaced, kept here as the reference: the same
losses, gradients and updated weights on a fixed seed, on the main job's stage-2 model
(configs/genrep/fmnist_genrep_stage2.py, random weights, a small batch).
"""
import copy
import os.path as osp
import types

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from tiny_models import dit_cfg, unet2d_cfg, unet2d_condition_cfg

import genrep  # noqa: F401
from genrep.registry import MODELS, OPTIM_WRAPPERS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STAGE2 = osp.join(ROOT, 'configs/genrep/fmnist_genrep_stage2.py')


@pytest.mark.parametrize('cfg,shape', [(unet2d_cfg(learn_sigma=True), (2, 1, 16, 16)),
                                       (unet2d_condition_cfg(), (2, 4, 8, 8)),
                                       (dit_cfg(), (2, 4, 8, 8))],
                         ids=['unet', 'unet_condition', 'dit'])
def test_forward_feature_is_forward_features_entry(cfg, shape):
    torch.manual_seed(0)
    denoiser = MODELS.build(cfg).eval()  # DiT's label embedding drops classes at random in training
    x = torch.randn(shape)
    labels = torch.tensor([1, 2])
    with torch.no_grad():
        features = denoiser.forward_features(x, 7, labels).features
        for index in [*range(len(features)), -1]:
            single = denoiser.forward_feature(x, 7, labels, index=index)
            assert torch.equal(single, features[index])
    assert denoiser._captured == {} and denoiser._stop_at is None


def test_forward_feature_ends_the_pass_at_the_deepest_decoder_feature():
    """The UNet's deepest decoder feature comes before its upper decoder blocks: they do not run,
    and the next full pass runs them again."""
    torch.manual_seed(0)
    denoiser = MODELS.build(unet2d_cfg(learn_sigma=True))
    calls = []
    denoiser.model.conv_out.register_forward_hook(lambda *_: calls.append('conv_out'))
    denoiser.model.up_blocks[1].register_forward_hook(lambda *_: calls.append('up_1'))
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        denoiser.forward_feature(x, 0, None)
        assert calls == []
        denoiser.forward_features(x, 0, None)
    assert calls == ['up_1', 'conv_out']


def build_stage2(seed: int = 0):
    """The main job's stage-2 model and optim wrapper (its config's), random weights; the semantic
    copy moved off the unified denoiser, as after some EMA steps, so that the two differ."""
    cfg = Config.fromfile(STAGE2)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        torch.manual_seed(seed)
        model = MODELS.build(cfg.model).train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                      lr=1e-3, weight_decay=0.01)
        wrapper = OPTIM_WRAPPERS.build({**cfg.optim_wrapper, 'optimizer': optimizer})
    with torch.no_grad():
        for param in model.semantic_denoiser.parameters():
            param.add_(0.01 * torch.randn_like(param))
        # the adjuster and the alignment projector start at zero corrections; move them so that
        # x_sem and the alignment target reach the losses' values and gradients
        for param in [*model.semantic_noise.parameters(), *model.rep_align.parameters()]:
            param.add_(0.01 * torch.randn_like(param))
    return model, wrapper


def stage2_batch(n: int = 6):
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randint(0, 256, (1, 32, 32), dtype=torch.uint8, generator=generator)
              for _ in range(n)]
    samples = [DataSample(metainfo=dict(sample_idx=i)).set_gt_label(i % 10) for i in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def full_pass_semantic_target(self, x0):
    """The alignment target as it was computed before: a whole pass of the semantic denoiser,
    its deepest decoder feature kept."""
    with torch.no_grad():
        return self.semantic_denoiser.forward_features(x0, 0, None).features[-1]


def train_steps(model, wrapper, steps: int = 2):
    """``steps`` training steps; the step's draws keyed by the run seed and iteration, as a
    runner sets them."""
    hub = MessageHub.get_current_instance()
    hub.update_info('seed', 0)
    logs = []
    for iteration in range(steps):
        hub.update_info('iter', iteration)
        logs.append(model.train_step(stage2_batch(), wrapper))
    return logs


def test_stage2_step_equals_the_full_pass_reference():
    """Two stage-2 steps with the alignment target's early-ending pass against the same steps with
    the whole pass: equal losses, cosine and weights."""
    model, wrapper = build_stage2()
    reference, reference_wrapper = build_stage2()
    reference.semantic_target = types.MethodType(full_pass_semantic_target, reference)
    before = copy.deepcopy(model.state_dict())
    logs = train_steps(model, wrapper)
    reference_logs = train_steps(reference, reference_wrapper)
    for log, reference_log in zip(logs, reference_logs):
        for name in ('loss_percept', 'loss_genera', 'genera_loss_rep_align', 'genera_loss_vlb',
                     'percept_loss_gen_distil'):
            torch.testing.assert_close(log[name], reference_log[name], rtol=1e-6, atol=1e-7)
    moved = 0
    for (name, param), reference_param in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(param, reference_param, rtol=1e-6, atol=1e-7, msg=name)
        moved += int(not torch.equal(param, before[name]))
    assert moved > 0

"""Depth through GenRep: the adaptive-bins head (depth = bin centres weighted by per-pixel bin
probabilities), the scene-class auxiliary head and the depth adapter on mmseg's DepthEstimator
(the same losses as DepthEstimator.loss from one head forward; the scene logits as the image-level
student of generative distillation)."""
import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.structures import PixelData

from tiny_models import unet2d_cfg

SCHEDULER = dict(num_train_timesteps=20, beta_schedule='linear', beta_start=1e-3, beta_end=0.2,
                 variance_type='fixed_small', clip_sample=False)
NUM_SCENES = 5


def depth_estimator(with_aux=True):
    model = dict(
        type='DepthEstimator',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3,
                               bgr_to_rgb=True, seg_pad_val=0, size=(32, 32)),
        backbone=dict(type='genrep.DiffusionBackbone', out_indices=(1, 2, 3),
                      denoiser=unet2d_cfg(in_channels=3, num_classes=NUM_SCENES)),
        decode_head=dict(type='genrep.BinsDepthHead', in_channels=[16, 16, 32], channels=16,
                         num_bins=8, num_layers=1, num_heads=2, max_depth=10.0),
        test_cfg=ConfigDict(mode='whole'))
    if with_aux:
        model['auxiliary_head'] = dict(type='genrep.SceneClassHead', in_channels=32,
                                       num_classes=NUM_SCENES)
    return model


def build(cfg):
    DefaultScope._instance_dict.clear()
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(cfg)


def depth_batch(model, categories=(2, -1)):
    from mmseg.structures import SegDataSample
    samples = []
    for i, category in enumerate(categories):
        depth = torch.linspace(1.0, 8.0, 32)[:, None].expand(32, 32).clone()[None]
        depth[:, 4:12, 4 + 4 * i:16] = 2.5
        depth[:, 0, :] = 0  # an invalid row
        samples.append(SegDataSample(
            gt_depth_map=PixelData(data=depth),
            metainfo=dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32),
                          category_id=category)))
    return model.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in samples],
             data_samples=samples), training=True)


def test_bins_depth_is_the_probability_weighted_sum_of_bin_centres():
    from genrep.models.heads.bins_depth_head import bin_centres, bins_depth
    widths = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    centres = bin_centres(widths, 1.0, 11.0)
    edges = 1.0 + 10.0 * np.concatenate([[0.0], np.cumsum([0.1, 0.2, 0.3, 0.4])])
    np.testing.assert_allclose(centres[0].numpy(), (edges[:-1] + edges[1:]) / 2, rtol=1e-6)
    probs = torch.rand(1, 4, 3, 5).softmax(dim=1)
    depth = bins_depth(probs, centres)
    expected = (probs[0].numpy() * centres[0].numpy()[:, None, None]).sum(0)
    np.testing.assert_allclose(depth[0, 0].numpy(), expected, rtol=1e-5)


def test_bins_head_depth_lies_in_range_and_its_loss_is_mmsegs_silog():
    from mmseg.models.losses import SiLogLoss
    from mmseg.models.utils import resize
    model = build(depth_estimator(with_aux=False))
    data = depth_batch(model)
    head = model.decode_head
    feats = model.extract_feat(data['inputs'])
    centres, probs = head.forward_bins(feats)
    assert centres.shape == (2, 8) and probs.shape == (2, 8, 16, 16)  # the stride-2 level
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 16, 16))
    assert (centres > head.min_depth).all() and (centres < head.max_depth).all()
    assert (centres[:, 1:] > centres[:, :-1]).all()
    depth = head(feats)
    torch.testing.assert_close(depth, torch.einsum('bkhw,bk->bhw', probs, centres)[:, None])
    gt = torch.stack([s.gt_depth_map.data for s in data['data_samples']])
    expected = SiLogLoss()(resize(depth, size=gt.shape[2:], mode='bilinear'), gt)
    losses = model.loss(data['inputs'], data['data_samples'])
    torch.testing.assert_close(losses['decode.loss_silog'], expected)
    losses['decode.loss_silog'].backward()
    assert head.queries.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    assert out[0].pred_depth_map.data.shape == (1, 32, 32)


def test_scene_class_head_ignores_unknown_scenes():
    model = build(depth_estimator())
    data = depth_batch(model, categories=(3, -1))
    aux = model.auxiliary_head
    logits = aux(model.extract_feat(data['inputs']))
    loss = aux.loss_by_feat(logits, data['data_samples'])['loss_cls']
    expected = torch.nn.functional.cross_entropy(logits[:1], torch.tensor([3]))
    torch.testing.assert_close(loss, expected)
    none = aux.loss_by_feat(logits, depth_batch(model, (-1, -1))['data_samples'])['loss_cls']
    assert none.item() == 0.0


def build_genrep(with_aux=True, posterior=True):
    cfg = dict(type='genrep.GenRep', perception=depth_estimator(with_aux),
               task=dict(type='DepthAdapter'), stage=1,
               schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER), num_candidates=3,
               distill_images=2)
    if posterior:
        cfg['posterior'] = dict(type='ReverseChainPosterior', burn_in=1, thinning=1,
                                temperature=1 / 3,
                                schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER,
                                              num_inference_steps=3))
    return build(cfg)


def test_depth_adapter_reads_the_estimator_once_and_distils_the_scene_class():
    model = build_genrep()
    perception = model.perception
    data = depth_batch(perception)
    calls = []
    handle = perception.decode_head.register_forward_hook(lambda *args: calls.append(1))
    torch.manual_seed(0)
    out = model.task.forward_train(perception, data['inputs'], data['data_samples'], True)
    handle.remove()
    assert len(calls) == 1
    torch.manual_seed(0)
    reference = perception.loss(data['inputs'], data['data_samples'])
    assert set(out.losses) == set(reference) == {'decode.loss_silog', 'aux.loss_cls'}
    for name in reference:
        torch.testing.assert_close(out.losses[name], reference[name])
    scores = out.scores
    assert scores.granularity == 'image' and scores.logits.shape == (2, NUM_SCENES)
    assert scores.labels.tolist() == [2, 0] and scores.valid.tolist() == [True, False]
    null = NUM_SCENES
    assert model.task.generation_labels(data['data_samples'], null, 'cpu').tolist() == [2, null]

    losses = model.loss(data['inputs'], data['data_samples'])
    distil = losses['percept'].gen_distil
    assert torch.isfinite(distil) and distil > 0
    parsed, _ = model.parse_losses(losses)
    parsed.backward()
    assert model.perception.auxiliary_head.fc.weight.grad.abs().sum() > 0


def test_depth_adapter_without_a_scene_head():
    model = build_genrep(with_aux=False, posterior=False)
    data = depth_batch(model.perception)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['percept'].total)
    with pytest.raises(ValueError, match='auxiliary_head'):
        model.task.forward_train(model.perception, data['inputs'], data['data_samples'], True)

"""DiffusionBackbone inside stock OpenMMLab models built from those toolkits' own configs
(cross-package `_base_ = ['mmseg::...']`), running loss, backward and prediction on CPU. This also
checks the compiled mmcv ops (multi-scale deformable attention, NMS) of the installed stack."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.structures import InstanceData, PixelData

from conftest import REPO_ROOT


def build_model(config, scope):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'tests', 'data', 'configs', config))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    DefaultScope._instance_dict.clear()
    init_default_scope(scope)
    from mmengine.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def test_mmcv_compiled_nms():
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_mmseg_mask2former_with_msdeformattn_pixel_decoder():
    from mmseg.structures import SegDataSample
    model = build_model('mask2former_diffusion_tiny.py', 'mmseg')
    assert type(model.backbone).__name__ == 'DiffusionBackbone'
    assert type(model.decode_head.pixel_decoder).__name__ == 'MSDeformAttnPixelDecoder'
    samples = []
    for i in range(2):
        seg = torch.zeros(1, 64, 64, dtype=torch.long)
        seg[:, 16:48, 8 + i * 8:40] = i + 1
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=seg),
                                     metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64))))
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
             data_samples=samples), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    unet = model.backbone.denoiser.model
    assert unet.down_blocks[0].resnets[0].conv1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)


def test_mmdet_retinanet_loss_and_predict():
    from mmdet.structures import DetDataSample
    model = build_model('retinanet_diffusion_tiny.py', 'mmdet')
    samples = []
    for i in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[4.0 + i, 6.0, 30.0, 40.0]]), labels=torch.tensor([i]))
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
             data_samples=samples), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.denoiser.model.conv_in.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    assert preds[0].pred_instances.bboxes.shape[-1] == 4

"""OpenVocabFPNHead: mmseg's semantic FPN head whose pixel classifier scores each pixel by the
scaled cosine similarity to class-name embeddings (all-MiniLM-L6-v2, encoded independently here),
trained through mmseg's loss, its vocabulary swapped for names it never saw; its training names may
come from a dataset config (a scenes tree's 'seen' list)."""
import json

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.structures import PixelData

from genrep.models.text_encoders import MiniLMTextEncoder

SEEN = ['bird', 'flower', 'fruit']


def head_cfg(cache_dir, class_names=SEEN, num_classes=None):
    return dict(type='genrep.OpenVocabFPNHead', in_channels=[8, 8], in_index=[0, 1],
                feature_strides=[2, 4], channels=16, dropout_ratio=0.1, num_classes=num_classes,
                class_names=class_names, norm_cfg=dict(type='GN', num_groups=4),
                text_encoder=dict(type='genrep.MiniLMTextEncoder', cache_dir=str(cache_dir)),
                loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))


@pytest.fixture
def build(tmp_path):
    DefaultScope._instance_dict.clear()
    init_default_scope('mmseg')
    from mmseg.registry import MODELS

    def _build(**kwargs):
        torch.manual_seed(0)
        return MODELS.build(head_cfg(tmp_path / 'cache', **kwargs))
    return _build


def test_pixel_logits_are_scaled_cosines_to_the_name_embeddings(build, tmp_path):
    head = build()
    assert head.num_classes == head.out_channels == 3 and head.class_names == SEEN
    head.eval()
    feat = torch.randn(2, 16, 5, 6)
    logits = head.cls_seg(feat)
    assert logits.shape == (2, 3, 5, 6)
    names = MiniLMTextEncoder(cache_dir=None).encode(SEEN)
    clf = head.conv_seg
    pixels = F.normalize(torch.einsum('bchw,dc->bhwd', feat, clf.projection.weight) +
                         clf.projection.bias, dim=-1)
    expected = clf.logit_scale * torch.einsum('bhwd,nd->bnhw', pixels, F.normalize(names, dim=-1))
    assert torch.allclose(logits, expected, atol=1e-4)


def test_trains_through_mmseg_loss_and_swaps_its_vocabulary(build):
    from mmseg.structures import SegDataSample
    head = build()
    inputs = (torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4))
    samples = []
    for i in range(2):
        seg = torch.full((1, 16, 16), 255, dtype=torch.long)
        seg[:, 2:10, 2:10] = i
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=seg),
                                     metainfo=dict(img_shape=(16, 16))))
    losses = head.loss(inputs, samples, train_cfg={})
    assert torch.isfinite(losses['loss_ce'])
    losses['loss_ce'].backward()
    assert head.conv_seg.projection.weight.grad.abs().sum() > 0

    head.eval()
    unseen = ['dog', 'boat', 'tree', 'mushroom']
    head.set_class_names(SEEN + unseen)
    assert head.num_classes == head.out_channels == 7 and head.class_names == SEEN + unseen
    with torch.no_grad():
        logits = head.predict(inputs, [dict(img_shape=(16, 16))], test_cfg={})
    assert logits.shape == (2, 7, 16, 16)


def test_names_from_a_dataset_config_and_num_classes_checked(build, tmp_path):
    (tmp_path / 'classes.json').write_text(json.dumps(dict(
        classes=['bird', 'dog', 'flower', 'fruit'], seen=SEEN, unseen=['dog'])))
    subset = dict(type='genrep.ScenesSegDataset', data_root=str(tmp_path), subset='seen')
    assert build(class_names=subset).class_names == SEEN
    assert build(num_classes=3).num_classes == 3
    with pytest.raises(ValueError, match=r'num_classes follows from class_names \(3 names\)'):
        build(num_classes=5)

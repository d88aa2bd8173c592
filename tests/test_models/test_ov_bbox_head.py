"""OpenVocabBBoxHead: mmdet's RoI box head with a text-embedding classifier. Logits against MiniLM's
cosines, mmdet's own loss and predict on a Faster R-CNN built with it, the vocabulary swapped to
names never trained on (OpenVocabularyHook's call), checkpoints across vocabularies."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from conftest import REPO_ROOT
from test_detection import det_batch

BASE = ['dog', 'tree', 'car', 'flower']
NOVEL = ['cat', 'bus']


def ov_faster_rcnn(cache_dir):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'tests/data/configs/faster_rcnn_diffusion_tiny.py'))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    head = cfg.model.roi_head.bbox_head
    head.pop('num_classes')
    head.update(type='genrep.OpenVocabBBoxHead', class_names=BASE, reg_class_agnostic=True,
                text_encoder=dict(type='genrep.MiniLMTextEncoder', cache_dir=str(cache_dir)))
    DefaultScope._instance_dict.clear()
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_ov_bbox_head_scores_rois_by_cosine_to_name_embeddings(tmp_path):
    from genrep.models.text_encoders import MiniLMTextEncoder
    model = ov_faster_rcnn(tmp_path)
    head = model.roi_head.bbox_head
    assert head.num_classes == 4 and head.reg_class_agnostic
    features = torch.randn(5, 32, 7, 7)
    cls_score, bbox_pred = head(features)
    assert cls_score.shape == (5, 5) and bbox_pred.shape == (5, 4)  # N + background; agnostic
    # independent: the shared fcs, the projection, then the cosine to MiniLM's name embeddings
    x = features.flatten(1)
    for fc in head.shared_fcs:
        x = F.relu(fc(x))
    projected = head.fc_cls.projection(x)
    text = MiniLMTextEncoder(cache_dir=str(tmp_path)).encode(BASE)
    classes = torch.cat([text, F.normalize(head.fc_cls.background_embedding, dim=0)[None]])
    cosine = F.cosine_similarity(projected[:, None], classes[None], dim=-1)
    torch.testing.assert_close(cls_score, head.fc_cls.logit_scale * cosine, rtol=1e-4,
                               atol=1e-4)


def test_ov_faster_rcnn_trains_with_mmdets_loss_and_detects_novel_names(tmp_path):
    model = ov_faster_rcnn(tmp_path)
    data = det_batch(model)
    torch.manual_seed(0)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    head = model.roi_head.bbox_head
    for param in (head.fc_cls.projection.weight, head.fc_cls.background_embedding,
                  head.fc_cls.log_logit_scale):
        assert param.grad.abs().sum() > 0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert not any('text_embeddings' in k for k in state)  # the vocabulary is not in the weights

    head.set_class_names(BASE + NOVEL)
    assert head.num_classes == 6 and head.class_names == BASE + NOVEL
    model.eval()
    with torch.no_grad():
        cls_score, _ = head(torch.randn(3, 32, 7, 7))
        preds = model.predict(data['inputs'], data['data_samples'])
    assert cls_score.shape == (3, 7)
    labels = preds[0].pred_instances.labels
    assert len(labels) > 0 and labels.max() < 6
    model.load_state_dict(state)  # a base-vocabulary checkpoint loads into the novel vocabulary
    assert head.num_classes == 6


def test_ov_bbox_head_refuses_class_specific_regression(tmp_path):
    cfg = dict(type='genrep.OpenVocabBBoxHead', class_names=BASE, in_channels=8,
               fc_out_channels=16, roi_feat_size=7, reg_class_agnostic=False,
               text_encoder=dict(type='genrep.MiniLMTextEncoder', cache_dir=str(tmp_path)))
    from genrep.registry import MODELS
    with pytest.raises(ValueError, match='reg_class_agnostic'):
        MODELS.build(cfg)

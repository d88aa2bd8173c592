"""The paper's open-vocabulary config (configs/genrep/cocostuff_ov_ade20k_ldm.py) loads, builds from
a tiny random Stable-Diffusion-style checkpoint and a tiny local CLIP text model, both written with
save_pretrained where the config looks for them, trains two iterations on images in the real
COCO-Stuff 164k layout with COCO-Stuff's 171 names and tests one iteration on images in the real
ADEChallengeData2016 layout with ADE20K's 150 names, through mmengine's Runner."""
import math

import pytest
import torch
import torch.nn.functional as F
from metric_oracles import checked_test_miou
from paper_config_helpers import (build_runner, load_tiny, write_ade20k, write_coco_stuff164k,
                                  write_sd_checkpoint)

from tiny_models import write_tiny_clip

TINY_UNET_CHANNELS = (8, 16, 16, 32)
TINY_SIZE_DIVISOR = 16
CLIP_DIM = 24


@pytest.fixture
def ov_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_coco_stuff164k('data/coco_stuff164k')
    write_ade20k('data/ade/ADEChallengeData2016')
    write_sd_checkpoint('checkpoints/stable-diffusion-v1-5')
    write_tiny_clip('checkpoints/clip-vit-base-patch16', projection_dim=CLIP_DIM)
    return tmp_path


def test_cocostuff_ov_ade20k_ldm_switches_vocabulary(ov_workdir):
    from mmseg.datasets import ADE20KDataset, COCOStuffDataset
    extra = {'model.decode_head.text_encoder.cache_dir': str(ov_workdir / 'text_cache')}
    cfg = load_tiny('cocostuff_ov_ade20k_ldm.py', 'model', TINY_UNET_CHANNELS, TINY_SIZE_DIVISOR,
                    extra)
    runner = build_runner(cfg, str(ov_workdir / 'work'))
    head = runner.model.decode_head
    assert type(head).__name__ == 'OpenVocabMask2FormerHead'
    coco_names = list(COCOStuffDataset.METAINFO['classes'])
    ade_names = list(ADE20KDataset.METAINFO['classes'])
    assert head.class_names == coco_names and head.num_classes == 171
    assert len(runner.train_dataloader.dataset) == 2

    # The query classifier's columns at every call: the vocabulary plus 'no object'.
    columns = []
    head.cls_embed.register_forward_hook(lambda _m, _args, out: columns.append(out.shape[-1]))
    predictions = []
    predict = head.predict

    def recording_predict(*args, **kwargs):
        predictions.append(predict(*args, **kwargs))
        return predictions[-1]

    head.predict = recording_predict
    runner.train()
    assert runner.iter == 2
    assert head.class_names == coco_names
    for name in ('loss', 'decode.loss_cls', 'decode.loss_mask'):
        assert math.isfinite(runner.message_hub.get_scalar(f'train/{name}').current()), name
    assert columns and set(columns) == {171 + 1}
    train_calls = len(columns)

    metrics = checked_test_miou(runner)
    assert head.class_names == ade_names and head.num_classes == 150
    assert set(columns[train_calls:]) == {150 + 1}
    assert len(predictions) == 1 and predictions[0].shape[1] == 150
    assert list(head.loss_cls.class_weight) == [1.0] * 150 + [0.1]
    # The test vocabulary is the CLIP text model's embeddings of ADE20K's names, encoded anew.
    from genrep.models.text_encoders import CLIPTextEncoder
    clip = CLIPTextEncoder('checkpoints/clip-vit-base-patch16', cache_dir=None)
    expected = clip.encode(ade_names)
    assert expected.shape == (150, CLIP_DIM)
    assert torch.allclose(head.cls_embed.text_embeddings, F.normalize(expected, dim=-1), atol=1e-6)
    assert set(metrics) >= {'mIoU', 'aAcc', 'mAcc'}

"""The paper's classification configs: cub_ldm.py (CUB-200, mmpretrain's CUB dataset) and
objectnet_ldm.py (trained on ImageNet's names, tested on ObjectNet's ImageNet-overlap classes by
cosine similarity to their text embeddings) load, build from tiny random checkpoints written where
they look for them, and run two training iterations and one test iteration through the Runner on
images written in the real CUB_200_2011, ImageNet and objectnet-1.0 layouts."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from metric_oracles import checked_test_top1
from paper_config_helpers import (build_runner, config_path, write_cub, write_imagenet_train,
                                  write_objectnet, write_sd_checkpoint)

from tiny_models import write_tiny_clip

TINY_DEEPEST = 32  # the tiny UNet's deepest decoder channels
CROP = 32
CLIP_DIM = 24


def tiny_classification(name: str, extra=None) -> Config:
    cfg = Config.fromfile(config_path(name))
    options = {
        'model.head.in_channels': TINY_DEEPEST,
        'train_dataloader.batch_size': 1,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.batch_size': 2,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.batch_size': 2,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': 1,
        'train_cfg.val_begin': 1000,  # no validation: the test loop is run on its own
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1000,
        'env_cfg.cudnn_benchmark': False,
    }
    options.update(extra or {})
    cfg.merge_from_dict(options)
    return cfg


def test_cub_ldm_trains_and_tests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labels = write_cub('data/CUB_200_2011')
    write_sd_checkpoint('checkpoints/stable-diffusion-v1-5')
    pipelines = {
        'train_dataloader.dataset.pipeline.1.scale': 40,
        'train_dataloader.dataset.pipeline.2.crop_size': CROP,
        'test_dataloader.dataset.pipeline.1.scale': 40,
        'test_dataloader.dataset.pipeline.2.crop_size': CROP,
    }
    cfg = tiny_classification('cub_ldm.py', pipelines)
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-3, weight_decay=0.05)
    runner = build_runner(cfg, str(tmp_path / 'work'))
    model = runner.model
    assert type(model).__name__ == 'ImageClassifier' and model.head.num_classes == 200
    dataset = runner.train_dataloader.dataset
    assert type(dataset).__name__ == 'CUB' and len(dataset) == 2
    assert [dataset.get_data_info(i)['gt_label'] for i in range(2)] == labels
    runner.train()
    assert runner.iter == 2
    assert math.isfinite(runner.message_hub.get_scalar('train/loss').current())
    checked_test_top1(runner)


def test_objectnet_ldm_trains_on_imagenet_names_and_tests_on_objectnets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_imagenet_train('data/imagenet')
    counts = write_objectnet('data/objectnet-1.0')
    write_sd_checkpoint('checkpoints/stable-diffusion-v1-5')
    write_tiny_clip('checkpoints/clip-vit-base-patch16', projection_dim=CLIP_DIM)
    pipelines = {
        'train_dataloader.dataset.pipeline.1.scale': CROP,
        'test_dataloader.dataset.pipeline.1.scale': 36,
        'test_dataloader.dataset.pipeline.2.crop_size': CROP,
    }
    cfg = tiny_classification('objectnet_ldm.py', pipelines)
    runner = build_runner(cfg, str(tmp_path / 'work'))
    head = runner.model.head
    assert type(head).__name__ == 'TextEmbeddingClsHead' and head.num_classes == 1000
    test_set = runner.test_dataloader.dataset
    assert test_set.metainfo['classes'] == tuple(sorted(counts))  # the overlap only
    assert len(test_set) == sum(counts.values())
    runner.train()
    assert runner.iter == 2
    assert math.isfinite(runner.message_hub.get_scalar('train/loss').current())
    checked_test_top1(runner)
    # At test the head scores ObjectNet's names: CLIP's embeddings of them.
    assert head.class_names == sorted(counts)
    from genrep.models.text_encoders import CLIPTextEncoder
    expected = CLIPTextEncoder('checkpoints/clip-vit-base-patch16', cache_dir=None).encode(
        sorted(counts))
    assert torch.allclose(head.classifier.text_embeddings, F.normalize(expected, dim=-1),
                          atol=1e-6)
    logits = head(runner.model.extract_feat(torch.zeros(1, 3, CROP, CROP)))
    assert logits.shape == (1, len(counts))


def test_objectnet_dataset_needs_its_mappings(tmp_path):
    from genrep.datasets import ObjectNet
    with pytest.raises(FileNotFoundError, match='folder_to_objectnet_name.json'):
        ObjectNet(data_root=str(tmp_path))

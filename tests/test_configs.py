"""Every config under configs/ loads and builds its model; a paper config whose local diffusers
checkpoint directory is absent (none ships here) stops at build time with one line naming it. The
paper configs run from tiny checkpoints in their own tests."""
import glob
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from conftest import REPO_ROOT, require_debian_data

CONFIGS = sorted(
    osp.relpath(p, REPO_ROOT)
    for p in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)

# Overrides that shrink a large model to a CPU-test size, by config name.
TINY_OVERRIDES = {}
# Configs whose model reads its vocabulary from the scenes tree (`make scenes`) when it is built.
SCENES_VOCABULARY = {'configs/genrep/scenes_ov_seg_unet.py': 'data/scenes/cocostuff/classes.json'}


def test_configs_found():
    assert 'configs/genrep/fmnist_unet_cls.py' in CONFIGS


def load_in_its_scope(path: str) -> Config:
    """The config at ``path`` (relative to the repository), its default scope made current."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, path))
    DefaultScope._instance_dict.clear()
    init_default_scope(cfg.get('default_scope', 'genrep'))
    return cfg


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_model(path):
    cfg = load_in_its_scope(path)
    if path in TINY_OVERRIDES:
        cfg.merge_from_dict(TINY_OVERRIDES[path])
    from mmengine.registry import MODELS
    model_cfg = cfg.model
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    vocabulary = SCENES_VOCABULARY.get(path)
    if vocabulary is not None and not osp.isfile(osp.join(REPO_ROOT, vocabulary)):
        with pytest.raises(FileNotFoundError, match=f'{vocabulary} not found.*make scenes'):
            MODELS.build(model_cfg)
        return
    pretrained = cfg.get('pretrained')
    if pretrained is not None and not osp.isdir(osp.join(REPO_ROOT, pretrained)):
        with pytest.raises(FileNotFoundError, match=f'{pretrained}.*is not a (local )?directory'):
            MODELS.build(model_cfg)
        return
    model = MODELS.build(model_cfg)
    assert type(model).__name__ == model_cfg['type'].split('.')[-1]
    # The denoiser the config describes is the one built: each setting of its diffusers config
    # reaches the built model, and GenRep shares that one module with the perception model.
    perception = model.perception if hasattr(model, 'perception') else model
    backbone_cfg = (model_cfg.perception if 'perception' in model_cfg else model_cfg).backbone
    if 'denoiser' in backbone_cfg:
        built = perception.backbone.denoiser.model.config
        for key, value in (backbone_cfg.denoiser.get('config') or {}).items():
            expected = list(value) if isinstance(value, (list, tuple)) else value
            got = list(built[key]) if isinstance(built[key], (list, tuple)) else built[key]
            assert got == expected, (path, key)
    if hasattr(model, 'perception'):
        assert model.stage == model_cfg.get('stage', 1)
        assert model.denoiser is perception.backbone.denoiser
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        patterns = model_cfg.get('trainable')
        if patterns is not None:  # exactly the parameters the patterns name, none of the EMA copy
            import re
            assert trainable == {n for n, _ in model.named_parameters()
                                 if not n.startswith('semantic_denoiser.')
                                 and any(re.search(p, n) for p in patterns)}, path


def test_attention_stage1_trains_the_attention_blocks_and_the_head_alone():
    """Algorithm 1's stage 1 (configs/genrep/fmnist_genrep_stage1_attention.py): every attention
    block of the UNet (down, mid and up) and the head train; the rest of the denoiser is frozen."""
    cfg = load_in_its_scope('configs/genrep/fmnist_genrep_stage1_attention.py')
    from mmengine.registry import MODELS
    model = MODELS.build(cfg.model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    unet = model.denoiser.model
    attention = {f'perception.backbone.denoiser.model.{n}'
                 for n, _ in unet.named_parameters() if '.attentions.' in n}
    head = {n for n, _ in model.named_parameters() if n.startswith('perception.head.')}
    assert trainable == attention | head
    blocks = {n.split('.attentions.')[0].split('model.')[1] for n in attention}
    assert blocks == {'down_blocks.3', 'mid_block', 'up_blocks.0'}
    assert 0 < sum(p.numel() for n, p in model.named_parameters() if n in attention) < \
        0.2 * sum(p.numel() for p in unet.parameters())


def test_few_label_stage1_trains_on_its_subset_for_its_whole_schedule():
    """configs/genrep/fmnist_genrep_stage1_5k.py: the first 5,000 training images, 40 batches an
    epoch, the cosine decay spanning all 10 epochs; everything else is the main job's stage 1."""
    cfg = load_in_its_scope('configs/genrep/fmnist_genrep_stage1_5k.py')
    main = load_in_its_scope('configs/genrep/fmnist_genrep_stage1.py')
    require_debian_data(cfg.train_dataloader.dataset.data_root)
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 5000
    assert math.ceil(len(dataset) / cfg.train_dataloader.batch_size) == 40
    assert cfg.param_scheduler[-1]['end'] == cfg.train_cfg.max_epochs == 10
    assert cfg.model == main.model and cfg.load_from == main.load_from

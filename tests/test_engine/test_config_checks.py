"""validate_config's class counts: a closed-set config's num_classes must match every dataset it
trains and tests on; an open-vocabulary config (OpenVocabularyHook) tests on another vocabulary, so
only its training data decides."""
import pytest
from mmengine.config import Config

from genrep.engine.config_checks import ConfigError, validate_config


def segmentation_cfg(num_classes, hooks=()):
    # COCO-Stuff's 171 classes in training, ADE20K's 150 at validation and test.
    return Config(dict(
        default_scope='mmseg',
        model=dict(decode_head=dict(num_classes=num_classes)),
        train_dataloader=dict(dataset=dict(type='COCOStuffDataset')),
        val_dataloader=dict(dataset=dict(type='ADE20KDataset')),
        test_dataloader=dict(dataset=dict(type='ADE20KDataset')),
        custom_hooks=list(hooks)))


def test_closed_set_counts_are_checked_against_every_dataset():
    with pytest.raises(ConfigError, match=r'^cfg.py: model.decode_head.num_classes=171 but '
                       r'val_dataloader.dataset \(ADE20KDataset\) has 150 classes'):
        validate_config(segmentation_cfg(171), 'cfg.py')


def test_open_vocabulary_counts_are_checked_against_the_training_data_only():
    hook = dict(type='genrep.OpenVocabularyHook')
    validate_config(segmentation_cfg(171, [hook]), 'cfg.py')
    with pytest.raises(ConfigError, match=r'^cfg.py: model.decode_head.num_classes=150 but '
                       r'train_dataloader.dataset \(COCOStuffDataset\) has 171 classes'):
        validate_config(segmentation_cfg(150, [hook]), 'cfg.py')

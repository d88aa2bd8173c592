"""Building a model from its config and checkpoint outside a Runner (tools, notebooks, the
inferencers)."""
import json
import os.path as osp
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DATASETS, DefaultScope, init_default_scope
from mmengine.runner import load_checkpoint

from genrep.registry import MODELS


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """The config's model, as the Runner builds it, with the checkpoint's weights, in eval mode.

    The config's top-level ``data_preprocessor`` goes into the model unless the model names its
    own (what mmengine's Runner does), so inputs are normalised as in training; SyncBN layers (a
    config written for several GPUs) become BatchNorm, as the Runner makes them on one process
    (mmengine's ``revert_sync_batchnorm``), with a log line. ``dataset_meta`` (class names,
    palette) is the checkpoint's, as the Runner saves it, or empty (see
    :func:`config_dataset_meta`). A ``.safetensors`` checkpoint (the model zoo's files, written by
    tools/model_converters/export_safetensors.py) is read by :func:`load_safetensors`.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    init_default_scope(cfg.get('default_scope', 'genrep'))
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    synced = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    if synced:
        model = revert_sync_batchnorm(model)
        print_log(f'single process: {synced} SyncBN layers converted to BatchNorm '
                  '(mmengine revert_sync_batchnorm)', logger='current')
    meta = {}
    if checkpoint is not None and checkpoint.endswith('.safetensors'):
        meta = load_safetensors(model, checkpoint)
    elif checkpoint is not None:
        meta = load_checkpoint(model, checkpoint, map_location='cpu').get('meta') or {}
    model.dataset_meta = dict(meta.get('dataset_meta') or {})
    model.cfg = cfg
    return model.to(device).eval()


def load_safetensors(model: torch.nn.Module, path: str) -> dict:
    """Loads the weights file ``path`` into ``model``: every key of the model must be in it, except
    those under the prefixes the file says it dropped (weights inference does not read), and
    nothing else may be; returns ``{'dataset_meta': ...}`` from its metadata (or ``{}``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(path, 'pt') as f:
        metadata = f.metadata() or {}
    dropped = tuple(json.loads(metadata.get('dropped', '[]')))
    result = model.load_state_dict(load_file(path), strict=False)
    missing = [key for key in result.missing_keys if not key.startswith(dropped)]
    if missing or result.unexpected_keys:
        raise ValueError(f'{path} does not fit the config\'s model: missing {missing[:5]}, '
                         f'unexpected {result.unexpected_keys[:5]}')
    if 'dataset_meta' in metadata:
        return dict(dataset_meta=json.loads(metadata['dataset_meta']))
    return {}


def config_dataset_meta(cfg: Config, dataloader: str = 'test_dataloader') -> dict:
    """The ``metainfo`` of the config's ``dataloader`` dataset, built without reading its files
    (``lazy_init``); empty where the config has none or its data is absent (a checkpoint used
    away from its dataset: the predictions then carry class indices, not names)."""
    dataset_cfg = (cfg.get(dataloader) or {}).get('dataset')
    if not dataset_cfg:
        return {}
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        try:
            dataset = DATASETS.build(dict(dataset_cfg, lazy_init=True, pipeline=[]))
        except (FileNotFoundError, OSError):
            return {}
    return dict(dataset.metainfo)

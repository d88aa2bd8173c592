"""Inference on a user's own images through the toolkits' inferencers.

A genrep config's model (a stock perception model, or GenRep around one: GenRep predicts as its
perception model does) is served by the inferencer of its toolkit: mmpretrain's
``ImageClassificationInferencer``, mmseg's ``MMSegInferencer`` (semantic segmentation and depth)
and mmdet's ``DetInferencer``. The subclasses here change only how the model is built: by
:func:`genrep.apis.init_model`, as the Runner builds it (the config's top-level data preprocessor,
the checkpoint's or else the config's class names), with the user's vocabulary on an
open-vocabulary model (``texts``). Inputs, batching, visualisation and outputs are the toolkits'.

The task comes from the config (:func:`config_task`); ``TASK_INFERENCERS`` maps a task to its
inferencer, so a new task is one entry there (and one in ``TASK_OF_MODEL`` / ``TASK_OF_SCOPE``).
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
from mmcv import bgr2gray, imread
from mmdet.apis import DetInferencer
from mmengine.config import Config
from mmengine.dataset import Compose, default_collate
from mmpretrain.apis import ImageClassificationInferencer
from mmseg.apis import MMSegInferencer

from genrep.engine.vocabulary_hook import vocabulary_modules
from .inference import config_dataset_meta, init_model

# The perception model's type -> task, where its toolkit serves more than one task.
TASK_OF_MODEL = {'DepthEstimator': 'depth'}
# The perception model's scope (its type's prefix, else the config's default scope) -> task.
TASK_OF_SCOPE = {'mmpretrain': 'classification', 'mmseg': 'segmentation', 'mmdet': 'detection'}


def config_task(cfg: Config) -> str:
    """The task of a config's perception model (the model itself, or GenRep's ``perception``)."""
    model = cfg.model
    if str(model.get('type', '')).split('.')[-1] == 'GenRep':
        model = model.perception
    scope, _, name = str(model.get('type', '')).rpartition('.')
    if name in TASK_OF_MODEL:
        return TASK_OF_MODEL[name]
    scope = scope or cfg.get('default_scope')
    if scope not in TASK_OF_SCOPE:
        raise ValueError(f'model.type={model.get("type")!r} in scope {scope!r}: no inferencer '
                         f'serves it (known scopes: {sorted(TASK_OF_SCOPE)})')
    return TASK_OF_SCOPE[scope]


def set_vocabulary(model, texts: Sequence[str]) -> None:
    """An open-vocabulary model scores the user's class names: every text classifier of the
    model (``set_class_names``, as ``OpenVocabularyHook`` sets them at test) and its
    ``dataset_meta``. A closed-set model refuses them."""
    modules = vocabulary_modules(model)
    if not modules:
        raise ValueError(f'texts: {type(model).__name__} is a closed-set model (no module with '
                         'set_class_names); class names apply to open-vocabulary configs only')
    for module in modules:
        module.set_class_names(list(texts))
    model.dataset_meta = dict(classes=tuple(texts))


def parse_texts(texts: Union[str, Sequence[str], None]) -> Optional[List[str]]:
    """``'cat, tree'`` or ``['cat', 'tree']`` -> ``['cat', 'tree']``."""
    if texts is None:
        return None
    names = texts.split(',') if isinstance(texts, str) else list(texts)
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise ValueError(f'texts={texts!r}: no class name given')
    return names


def class_palette(num_classes: int, seed: int = 0) -> List[tuple]:
    """A fixed colour per class, for vocabularies that come without a palette."""
    rng = np.random.default_rng(seed)
    return [tuple(colour) for colour in rng.integers(0, 256, (num_classes, 3)).tolist()]


def build_inference_model(cfg: Config, weights: Optional[str], device: str,
                          texts: Optional[Sequence[str]] = None):
    """The model of ``cfg`` with ``weights`` (:func:`init_model`) on ``device``, the user's
    vocabulary set, and a class name and colour for every class it predicts."""
    model = init_model(cfg, weights, device)
    if not model.dataset_meta:
        model.dataset_meta = config_dataset_meta(cfg)
    if texts is not None:
        set_vocabulary(model, texts)
    # What the toolkits' visualisers read (mmseg's takes no other key).
    meta = {key: model.dataset_meta.get(key) for key in ('classes', 'palette')}
    if not meta.get('classes'):
        num_classes = _num_classes(model)
        if num_classes is None:
            raise ValueError(f'{weights}: neither the checkpoint nor the config\'s test dataset '
                             'names the classes')
        meta['classes'] = tuple(str(index) for index in range(num_classes))
    if not meta.get('palette'):
        meta['palette'] = class_palette(len(meta['classes']))
    model.dataset_meta = meta
    return model


def _num_classes(model) -> Optional[int]:
    for module in model.modules():
        if module is not model and isinstance(getattr(module, 'num_classes', None), int):
            return module.num_classes
    return None


def _as_config(model: Union[str, Config]) -> Config:
    return Config.fromfile(model) if isinstance(model, str) else model.copy()


class GenRepModelMixin:
    """For inferencers on mmengine's ``BaseInferencer``: the model built by
    :func:`build_inference_model` (``self._texts``, set before the base class builds it)."""

    def _init_model(self, cfg, weights, device):
        return build_inference_model(cfg, weights, device, self._texts)


class SegmentationInferencer(GenRepModelMixin, MMSegInferencer):
    """mmseg's inferencer (masks overlaid; depth maps in colour) on a genrep config's model."""

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: str = 'cpu', texts: Optional[Sequence[str]] = None):
        self._texts = parse_texts(texts)
        cfg = _as_config(model)
        super().__init__(cfg, weights, device=device, scope=cfg.get('default_scope', 'mmseg'))
        meta = self.model.dataset_meta
        self.visualizer.set_dataset_meta(list(meta['classes']), meta['palette'])


class DetectionInferencer(GenRepModelMixin, DetInferencer):
    """mmdet's inferencer (boxes with class names) on a genrep config's model."""

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: str = 'cpu', texts: Optional[Sequence[str]] = None):
        self._texts = parse_texts(texts)
        cfg = _as_config(model)
        super().__init__(cfg, weights, device=device, scope=cfg.get('default_scope', 'mmdet'))


class ClassificationInferencer(ImageClassificationInferencer):
    """mmpretrain's inferencer (the top class drawn on the image) on a genrep config's model.

    mmpretrain's reads every image as BGR; a model trained on one channel (Fashion-MNIST) gets it
    as grayscale, as its dataset gave it.
    """

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: str = 'cpu', texts: Optional[Sequence[str]] = None):
        cfg = _as_config(model)
        built = build_inference_model(cfg, weights, device, parse_texts(texts))
        built._config = cfg
        super().__init__(built, pretrained=False, device=device,
                         classes=list(built.dataset_meta['classes']))
        mean = built.data_preprocessor.mean
        self.grayscale = mean is not None and mean.numel() == 1

    def __call__(self, inputs, out_dir: str = '', **kwargs):
        """mmpretrain's call; ``out_dir`` as mmseg's and mmdet's: the drawn images under
        ``<out_dir>/vis`` (mmpretrain's ``show_dir``)."""
        if out_dir:
            kwargs.setdefault('show_dir', osp.join(out_dir, 'vis'))
            os.makedirs(out_dir, exist_ok=True)
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs, batch_size: int = 1):

        def load_image(input_):
            img = imread(input_)
            if img is None:
                raise ValueError(f'Failed to read image {input_}.')
            if self.grayscale and img.ndim == 3:
                img = bgr2gray(img)
            return dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])

        pipeline = Compose([load_image, self.pipeline])
        chunked_data = self._get_chunk_data(map(pipeline, inputs), batch_size)
        yield from map(default_collate, chunked_data)


# task -> inferencer: a new task adds its entry.
TASK_INFERENCERS = {
    'classification': ClassificationInferencer,
    'segmentation': SegmentationInferencer,
    'depth': SegmentationInferencer,
    'detection': DetectionInferencer,
}


def build_inferencer(config: Union[str, Config], weights: Optional[str] = None,
                     device: str = 'cpu', texts: Union[str, Sequence[str], None] = None):
    """The inferencer of the config's task (:func:`config_task`) on its model with ``weights``;
    ``texts``: the class names an open-vocabulary model scores."""
    cfg = _as_config(config)
    return TASK_INFERENCERS[config_task(cfg)](cfg, weights, device=device, texts=texts)

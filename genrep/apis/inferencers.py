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

A user's image may have any size and mode (RGB, RGBA, palette, grayscale). Each inferencer brings
it to what the model reads, as the config's data states (:func:`input_conversion`): the
toolkits' loaders read a file as 3-channel colour and the config's test pipeline resizes it; a
classifier whose test pipeline only pads (Fashion-MNIST: 28 x 28 padded to 32 x 32) gets the
image fitted, keeping its aspect ratio, into its dataset's image size and in its channels. The
inferencer logs what it does once, when it is built.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import numpy as np
from mmcv import imresize
from mmdet.apis import DetInferencer
from mmengine.config import Config
from mmengine.dataset import Compose, default_collate
from mmengine.logging import print_log
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.utils import progress as mmpretrain_progress
from mmseg.apis import MMSegInferencer

from PIL import Image

from genrep.engine.vocabulary_hook import vocabulary_modules
from genrep.registry import DATASETS
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


# Steps of a test pipeline that bring any image to the model's size; without one, the image must
# arrive at the dataset's size (a pipeline that only pads).
RESIZING_STEPS = ('Resize', 'ResizeEdge', 'RandomResize', 'RandomResizedCrop', 'Scale')
# What a user's image may be; the file names of a folder the demo and the inferencers take.
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def _step_name(step: dict) -> str:
    return str(step.get('type', '')).split('.')[-1]


def _test_pipeline(cfg: Config) -> list:
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    return list(dataset.get('pipeline') or [])


def dataset_image_size(cfg: Config) -> Optional[tuple]:
    """``(H, W)`` of every image of the config's test dataset, where its class declares one
    (``IMAGE_SIZE``, e.g. Fashion-MNIST's 28 x 28); else None."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        dataset_class = DATASETS.get(dataset.get('type', '')) if dataset.get('type') else None
    size = getattr(dataset_class, 'IMAGE_SIZE', None)
    return tuple(size) if size else None


@dataclass
class InputConversion:
    """How a user's image becomes what the model reads.

    Attributes:
        channels (int): 1 (grayscale, the model's data preprocessor normalises one channel) or 3.
        fit_size (tuple | None): ``(H, W)`` the image is fitted into, keeping its aspect ratio,
            before the config's test pipeline; None where that pipeline resizes it.
        background (int): the grey level that transparent pixels are laid on (the pipeline's
            ``pad_val``, else black).
        description (str): one sentence for the log.
    """
    channels: int
    fit_size: Optional[tuple]
    background: int
    description: str


def input_conversion(cfg: Config, channels: int) -> InputConversion:
    """What the config's data states for an input image: its channels (``channels``, from the
    model's data preprocessor), its test pipeline's resizing step, or, where that pipeline only
    pads, the dataset's image size (:func:`dataset_image_size`, else the ``Pad`` size)."""
    pipeline = _test_pipeline(cfg)
    mode = 'grayscale' if channels == 1 else '3-channel colour'
    read = (f'images of any size and mode (RGB, RGBA, palette, grayscale) are read as {mode}')
    resizing = [step for step in pipeline if _step_name(step) in RESIZING_STEPS]
    pads = [step for step in pipeline if _step_name(step) == 'Pad']
    background = int(pads[0].get('pad_val', 0)) if pads and not isinstance(
        pads[0].get('pad_val', 0), dict) else 0
    if resizing:
        step = {k: v for k, v in resizing[0].items() if k != 'type'}
        return InputConversion(channels, None, background,
                               f'{read}, then resized by the test pipeline of the config '
                               f'({_step_name(resizing[0])} {step})')
    fit = dataset_image_size(cfg)
    source = 'the image size of its dataset'
    if fit is None and pads and pads[0].get('size'):
        fit, source = tuple(pads[0]['size']), 'the Pad size of the test pipeline'
    if fit is None:
        return InputConversion(channels, None, background,
                               f'{read} and given to the model at their own size (the test '
                               'pipeline does not resize; the data preprocessor pads)')
    text = f'{read}, fitted keeping their aspect ratio into {fit[0]} x {fit[1]} ({source})'
    if pads and pads[0].get('size'):
        size = pads[0]['size']
        text += f', padded to {size[0]} x {size[1]} by the test pipeline (value {background})'
    return InputConversion(channels, fit, background, text)


def read_image(path: str, conversion: InputConversion) -> np.ndarray:
    """The image file as the model reads it: uint8 [H, W] (grayscale) or [H, W, 3] (BGR, as
    mmcv reads images); transparency laid on ``conversion.background``; fitted into
    ``conversion.fit_size`` (keeping the aspect ratio) where given."""
    try:
        with Image.open(path) as opened:
            image = opened.copy()
    except (OSError, ValueError) as err:
        raise ValueError(f'{path}: not a readable image ({err})') from err
    return convert_image(image, conversion)


def convert_image(image: Union[Image.Image, np.ndarray],
                  conversion: InputConversion) -> np.ndarray:
    """:func:`read_image` on an image in memory (a PIL image, or an array as mmcv reads one:
    [H, W] or BGR [H, W, 3])."""
    if isinstance(image, np.ndarray):
        array = image if image.ndim == 2 else image[..., 2::-1]  # BGR -> RGB
        image = Image.fromarray(np.ascontiguousarray(array.astype(np.uint8)))
    if image.mode == 'P':  # a palette may carry transparency
        image = image.convert('RGBA')
    if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):  # 16-bit grayscale to 8 bits
        wide = np.asarray(image, dtype=np.float64)
        image = Image.fromarray((wide * 255.0 / max(wide.max(), 1.0)).round().astype(np.uint8))
    if image.mode in ('RGBA', 'LA'):
        ground = Image.new('RGBA', image.size, (conversion.background, ) * 3 + (255, ))
        image = Image.alpha_composite(ground, image.convert('RGBA'))
    image = image.convert('L' if conversion.channels == 1 else 'RGB')
    array = np.asarray(image)
    if conversion.channels != 1:
        array = np.ascontiguousarray(array[..., ::-1])  # RGB -> BGR, as mmcv reads images
    if conversion.fit_size is not None:
        (height, width), (fit_h, fit_w) = array.shape[:2], conversion.fit_size
        scale = min(fit_h / height, fit_w / width)
        size = (max(1, min(fit_w, round(width * scale))), max(1, min(fit_h, round(height * scale))))
        if size != (width, height):
            array = imresize(array, size, interpolation='area' if scale < 1 else 'bilinear')
    return array


def image_files(inputs: str) -> List[str]:
    """An image file -> [it]; a folder -> its image files (``IMAGE_EXTENSIONS``), sorted by
    name, so predictions come in a known order."""
    if osp.isdir(inputs):
        names = sorted(name for name in os.listdir(inputs)
                       if name.lower().endswith(IMAGE_EXTENSIONS)
                       and osp.isfile(osp.join(inputs, name)))
        if not names:
            raise FileNotFoundError(f'inputs {inputs!r}: no image file '
                                    f'({", ".join(IMAGE_EXTENSIONS)}) in the folder')
        return [osp.join(inputs, name) for name in names]
    if not osp.isfile(inputs):
        raise FileNotFoundError(f'inputs {inputs!r}: no such image or folder')
    return [inputs]


def log_conversion(conversion: InputConversion) -> InputConversion:
    """Say once, when an inferencer is built, how it brings a user's image to the model."""
    print_log(f'inference input: {conversion.description}', logger='current')
    return conversion


class GenRepModelMixin:
    """For inferencers on mmengine's ``BaseInferencer``: the model built by
    :func:`build_inference_model` (``self._texts``, set before the base class builds it)."""

    def _init_model(self, cfg, weights, device):
        return build_inference_model(cfg, weights, device, self._texts)


class SegmentationInferencer(GenRepModelMixin, MMSegInferencer):
    """mmseg's inferencer (masks overlaid; depth maps in colour) on a genrep config's model."""

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: str = 'cpu', texts: Optional[Sequence[str]] = None,
                 show_progress: bool = True):
        self._texts = parse_texts(texts)
        cfg = _as_config(model)
        super().__init__(cfg, weights, device=device, scope=cfg.get('default_scope', 'mmseg'))
        self.show_progress = show_progress  # mmengine's switch; mmseg's __init__ does not take it
        meta = self.model.dataset_meta
        self.visualizer.set_dataset_meta(list(meta['classes']), meta['palette'])
        self.conversion = log_conversion(input_conversion(cfg, channels=3))


class DetectionInferencer(GenRepModelMixin, DetInferencer):
    """mmdet's inferencer (boxes with class names) on a genrep config's model."""

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: str = 'cpu', texts: Optional[Sequence[str]] = None,
                 show_progress: bool = True):
        self._texts = parse_texts(texts)
        cfg = _as_config(model)
        super().__init__(cfg, weights, device=device, scope=cfg.get('default_scope', 'mmdet'),
                         show_progress=show_progress)
        self.conversion = log_conversion(input_conversion(cfg, channels=3))


class ClassificationInferencer(ImageClassificationInferencer):
    """mmpretrain's inferencer (the top class drawn on the image) on a genrep config's model.

    Each image is read by :func:`read_image`: in the channels the model was trained on (one for
    Fashion-MNIST, whose data preprocessor normalises one channel) and, where the config's test
    pipeline only pads, fitted into its dataset's image size. The drawing shows the image with
    its top class, enlarged to a short edge of ``MIN_DRAWN_EDGE`` pixels where it is smaller, so
    that the label can be read (a 28 x 28 image is drawn at 224 x 224).
    """

    MIN_DRAWN_EDGE = 224

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: str = 'cpu', texts: Optional[Sequence[str]] = None,
                 show_progress: bool = True):
        self.show_progress = show_progress
        cfg = _as_config(model)
        built = build_inference_model(cfg, weights, device, parse_texts(texts))
        built._config = cfg
        super().__init__(built, pretrained=False, device=device,
                         classes=list(built.dataset_meta['classes']))
        mean = built.data_preprocessor.mean
        channels = 1 if mean is not None and mean.numel() == 1 else 3
        self.conversion = log_conversion(input_conversion(cfg, channels))

    def __call__(self, inputs, out_dir: str = '', **kwargs):
        """mmpretrain's call; ``out_dir`` as mmseg's and mmdet's: the drawn images under
        ``<out_dir>/vis`` (mmpretrain's ``show_dir``)."""
        if out_dir:
            kwargs.setdefault('show_dir', osp.join(out_dir, 'vis'))
            os.makedirs(out_dir, exist_ok=True)
        # mmpretrain's progress bar has one switch, module-wide: set for this call only.
        was_disabled = mmpretrain_progress.disable_progress_bar
        mmpretrain_progress.disable_progress_bar = was_disabled or not self.show_progress
        try:
            return super().__call__(inputs, **kwargs)
        finally:
            mmpretrain_progress.disable_progress_bar = was_disabled

    def preprocess(self, inputs, batch_size: int = 1):

        def load_image(input_):
            if isinstance(input_, str):
                img = read_image(input_, self.conversion)
            else:
                img = convert_image(input_, self.conversion)
            return dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])

        pipeline = Compose([load_image, self.pipeline])
        chunked_data = self._get_chunk_data(map(pipeline, inputs), batch_size)
        yield from map(default_collate, chunked_data)

    def visualize(self, ori_inputs, preds, resize: Optional[int] = None, **kwargs):
        """mmpretrain's drawing, image by image, a small image enlarged to ``MIN_DRAWN_EDGE``
        (unless ``resize`` is given)."""
        if resize is not None or not all(isinstance(i, str) for i in ori_inputs):
            return super().visualize(ori_inputs, preds, resize=resize, **kwargs)
        drawings = []
        for input_, pred in zip(ori_inputs, preds):
            with Image.open(input_) as image:
                short_edge = min(image.size)
            edge = self.MIN_DRAWN_EDGE if short_edge < self.MIN_DRAWN_EDGE else None
            drawn = super().visualize([input_], [pred], resize=edge, **kwargs)
            drawings.extend(drawn or [])
        return drawings or None


# task -> inferencer: a new task adds its entry.
TASK_INFERENCERS = {
    'classification': ClassificationInferencer,
    'segmentation': SegmentationInferencer,
    'depth': SegmentationInferencer,
    'detection': DetectionInferencer,
}


def build_inferencer(config: Union[str, Config], weights: Optional[str] = None,
                     device: str = 'cpu', texts: Union[str, Sequence[str], None] = None,
                     show_progress: bool = True):
    """The inferencer of the config's task (:func:`config_task`) on its model with ``weights``;
    ``texts``: the class names an open-vocabulary model scores; ``show_progress``: the toolkit's
    progress bar while it infers (off where the output is not a terminal: the bar is drawn
    there without a line end, so the next printed line would follow it)."""
    cfg = _as_config(config)
    return TASK_INFERENCERS[config_task(cfg)](cfg, weights, device=device, texts=texts,
                                              show_progress=show_progress)

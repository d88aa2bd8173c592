"""ScenesSegDataset: mmseg's BaseSegDataset on a scenes tree, its classes read from the tree.

``tools/dataset_converters/make_scenes.py`` writes the ADE20K-style tree (``ade/``, 0 = unlabelled,
``reduce_zero_label``) and the COCO-Stuff-style one (``cocostuff/``, ``*_labelTrainIds.png``, 255
ignored), each with a ``classes.json`` ({classes, palette, ...}). mmseg's ``ADE20KDataset`` and
``COCOStuffDataset`` accept only their own class lists, so this class is ``BaseSegDataset`` with the
metainfo of the tree's ``classes.json``; everything else (file listing, pipelines, IoUMetric) is
mmseg's.
"""
import json
import os.path as osp
from mmseg.datasets import BaseSegDataset

from genrep.registry import DATASETS


def read_scene_classes(data_root: str, classes_file: str = 'classes.json') -> dict:
    """{'classes': [...], 'palette': [...], ...} of a scenes tree, or a one-line error naming the
    file."""
    path = osp.join(data_root, classes_file)
    if not osp.isfile(path):
        raise FileNotFoundError(f'ScenesSegDataset: {path} not found; make the scenes with '
                                'tools/dataset_converters/make_scenes.py (or `make scenes`)')
    with open(path) as f:
        meta = json.load(f)
    if not meta.get('classes'):
        raise ValueError(f"ScenesSegDataset: {path} has no 'classes'")
    return meta


@DATASETS.register_module()
class ScenesSegDataset(BaseSegDataset):
    """A scenes segmentation tree.

    Args:
        data_root: the tree (e.g. ``data/scenes/ade``).
        classes_file: the tree's class file.
        kwargs: ``BaseSegDataset``'s (``data_prefix``, ``img_suffix``, ``seg_map_suffix``,
            ``reduce_zero_label``, ``pipeline``, ...).
    """

    def __init__(self,
                 data_root: str,
                 classes_file: str = 'classes.json',
                 **kwargs):
        meta = read_scene_classes(data_root, classes_file)
        metainfo = dict(classes=tuple(meta['classes']))
        if meta.get('palette'):
            metainfo['palette'] = [list(color) for color in meta['palette']]
        super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

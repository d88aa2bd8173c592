"""ScenesSegDataset: mmseg's BaseSegDataset on a scenes tree, its classes read from the tree.

``tools/dataset_converters/make_scenes.py`` writes the ADE20K-style tree (``ade/``, 0 = unlabelled,
``reduce_zero_label``) and the COCO-Stuff-style one (``cocostuff/``, ``*_labelTrainIds.png``, 255
ignored), each with a ``classes.json`` ({classes, palette, ...}; the COCO-Stuff one also lists the
``seen`` classes of the open-vocabulary split and the ``unseen`` ones held out of training).
mmseg's ``ADE20KDataset`` and ``COCOStuffDataset`` accept only their own class lists, so this class
is ``BaseSegDataset`` with the metainfo of the tree's ``classes.json``; everything else (file
listing, pipelines, label maps, IoUMetric) is mmseg's.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence

from mmseg.datasets import BaseSegDataset

from genrep.registry import DATASETS

from .faults import NamedDataFaults


def read_scene_classes(data_root: str, classes_file: str = 'classes.json',
                       owner: str = 'ScenesSegDataset', split: Optional[str] = None) -> dict:
    """{'classes': [...], 'palette': [...], ...} of a scenes tree (with the key ``split`` where
    one is named), or a one-line error naming ``owner`` and the file."""
    path = osp.join(data_root, classes_file)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{owner}: {path} not found; make the scenes with '
                                'tools/dataset_converters/make_scenes.py (or `make scenes`)')
    with open(path) as f:
        meta = json.load(f)
    if split is not None and (not meta.get('classes') or split not in meta):
        raise ValueError(f"{owner}: {path} needs 'classes' and the split {split!r} (it has "
                         f'{sorted(meta)})')
    if not meta.get('classes'):
        raise ValueError(f"{owner}: {path} has no 'classes'")
    return meta


def class_subsets(meta: dict) -> Dict[str, list]:
    """The lists of ``classes.json`` other than ``classes`` whose entries are all class names
    (e.g. ``seen`` and ``unseen``)."""
    names = set(meta['classes'])
    return {
        key: list(value)
        for key, value in meta.items() if key != 'classes' and isinstance(value, list) and value
        and all(isinstance(name, str) and name in names for name in value)
    }


@DATASETS.register_module()
class ScenesSegDataset(NamedDataFaults, BaseSegDataset):
    """A scenes segmentation tree.

    The metainfo holds the tree's ``classes`` and ``palette`` and each class subset it lists
    (``seen``, ``unseen``: what a metric reports separately).

    Args:
        data_root: the tree (e.g. ``data/scenes/ade``).
        classes_file: the tree's class file.
        subset: the name of a class list of ``classes_file`` (e.g. ``'seen'``) to use as the
            dataset's classes: their pixels are relabelled 0..len(subset) - 1 in the subset's
            order and every other class's pixels become the ignore index (mmseg's label map, as
            ``metainfo=dict(classes=...)`` does for mmseg's own datasets). None: all classes.
        kwargs: ``BaseSegDataset``'s (``data_prefix``, ``img_suffix``, ``seg_map_suffix``,
            ``reduce_zero_label``, ``pipeline``, ...) and ``skip_faulty``
            (:class:`~genrep.datasets.faults.NamedDataFaults`: a missing or damaged image or
            annotation fails naming it, or is skipped and counted).
    """

    def __init__(self,
                 data_root: str,
                 classes_file: str = 'classes.json',
                 subset: Optional[str] = None,
                 **kwargs):
        meta = read_scene_classes(data_root, classes_file)
        subsets = class_subsets(meta)
        self.tree_classes = tuple(meta['classes'])
        classes = self.tree_classes
        if subset is not None:
            if subset not in subsets:
                raise ValueError(f'ScenesSegDataset: subset={subset!r} is not a class list of '
                                 f'{osp.join(data_root, classes_file)} (it has {sorted(subsets)})')
            classes = tuple(subsets[subset])
        metainfo = dict(classes=classes, **subsets)
        if meta.get('palette'):
            palette = [list(color) for color in meta['palette']]
            metainfo['palette'] = [palette[self.tree_classes.index(name)] for name in classes]
        super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

    def get_label_map(self, new_classes: Optional[Sequence[str]] = None) -> Optional[dict]:
        """mmseg's label map from the tree's label ids (indices of its ``classes``) to those of
        ``new_classes`` (a subset; the others to the ignore index), or None for all classes."""
        if new_classes is None or list(new_classes) == list(self.tree_classes):
            return None
        return {
            index: list(new_classes).index(name) if name in new_classes else self.ignore_index
            for index, name in enumerate(self.tree_classes)
        }

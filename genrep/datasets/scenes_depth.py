"""The embedded scenes' depth tree: mmseg's ``NYUDataset`` with the tree's scene classes.

``tools/dataset_converters/make_scenes.py`` writes ``nyu/`` in mmseg's NYU layout
(``images|annotations/{train,test}``, uint16 millimetre PNGs) and ``nyu/classes.json``: the
super-categories as ``classes`` and each scene's class per split (the object nearest the camera).
NYUv2 carries its scene class in the file name (``NYUDataset._get_category_id_from_filename``);
the scenes' names carry none, so this class reads it from ``classes.json``. File listing, depth
loading, pipelines and ``DepthMetric`` are mmseg's.
"""
import os.path as osp

from mmseg.datasets import NYUDataset

from genrep.registry import DATASETS

from .faults import NamedDataFaults
from .scenes_seg import read_scene_classes


@DATASETS.register_module()
class ScenesDepthDataset(NamedDataFaults, NYUDataset):
    """A scenes depth tree.

    Args:
        data_root: the tree (e.g. ``data/scenes/nyu``).
        split: the split of ``classes_file`` the images belong to (``'train'`` or ``'test'``).
        classes_file: the tree's class file.
        kwargs: ``NYUDataset``'s (``data_prefix``, ``pipeline``, ``test_mode``, ...) and
            ``skip_faulty`` (:class:`~genrep.datasets.faults.NamedDataFaults`: a missing or
            damaged image or depth map fails naming it, or is skipped and counted).
    """
    # The classes are the tree's, known once classes.json is read (not NYUv2's 27).
    METAINFO = dict()

    def __init__(self, data_root: str, split: str, classes_file: str = 'classes.json', **kwargs):
        meta = read_scene_classes(data_root, classes_file, 'ScenesDepthDataset', split)
        self.scene_classes = meta[split]
        super().__init__(data_root=data_root, metainfo=dict(classes=tuple(meta['classes'])),
                         **kwargs)

    def _get_category_id_from_filename(self, image_fname: str) -> int:
        stem = osp.splitext(osp.basename(image_fname))[0]
        name = self.scene_classes.get(stem)
        return self._metainfo['classes'].index(name) if name is not None else -1

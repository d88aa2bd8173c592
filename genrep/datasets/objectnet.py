"""ObjectNet (Barbu et al., 2019) in its released folder layout, for out-of-distribution tests of
ImageNet-trained classifiers.

    objectnet-1.0/
      images/<folder>/<image>.png                     313 class folders
      mappings/folder_to_objectnet_name.json          {"alarm_clock": "Alarm clock", ...}
      mappings/objectnet_to_imagenet_1k.json          {"Alarm clock": "analog clock; ...", ...}

The usual protocol (and the paper's, Sec. 4) scores the 113 ObjectNet classes that overlap
ImageNet-1k (the keys of ``objectnet_to_imagenet_1k.json``); the classes are the ObjectNet
names, which a text-embedding head (``genrep.TextEmbeddingClsHead``) encodes, so no ImageNet-index
mapping is needed. ObjectNet's images carry a 1-pixel red border; the test pipeline's centre
crop removes it.
"""
import json
import os.path as osp
from typing import List

from mmengine.fileio import list_dir_or_file
from mmpretrain.datasets import BaseDataset

from genrep.registry import DATASETS

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')


def _read_json(path: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(f'ObjectNet: {path} not found (the mappings/ folder of '
                                'objectnet-1.0)')
    with open(path) as f:
        return json.load(f)


@DATASETS.register_module()
class ObjectNet(BaseDataset):
    """ObjectNet images with the ObjectNet class names as labels.

    Args:
        data_root: the ``objectnet-1.0`` folder.
        imagenet_overlap: keep only the classes that map to ImageNet-1k (113); False: all 313.
        kwargs: mmpretrain ``BaseDataset``'s (``pipeline``, ``test_mode``, ...).
    """
    # The classes are read from the mappings when the dataset is built.
    METAINFO = dict()

    def __init__(self, data_root: str, imagenet_overlap: bool = True, **kwargs):
        mappings = osp.join(data_root, 'mappings')
        self.folder_names = _read_json(osp.join(mappings, 'folder_to_objectnet_name.json'))
        names = sorted(set(self.folder_names.values()))
        if imagenet_overlap:
            overlap = _read_json(osp.join(mappings, 'objectnet_to_imagenet_1k.json'))
            unknown = sorted(set(overlap) - set(names))
            if unknown:
                raise ValueError(f'ObjectNet: {mappings}/objectnet_to_imagenet_1k.json names '
                                 f'classes with no image folder: {unknown[:5]}')
            names = sorted(overlap)
        super().__init__(ann_file='', data_root=data_root, data_prefix='images',
                         metainfo=dict(classes=tuple(names)), **kwargs)

    def load_data_list(self) -> List[dict]:
        classes = list(self.metainfo['classes'])
        image_dir = self.data_prefix['img_path']
        data_list = []
        for folder in sorted(self.folder_names):
            name = self.folder_names[folder]
            if name not in classes or not osp.isdir(osp.join(image_dir, folder)):
                continue
            label = classes.index(name)
            for image in sorted(list_dir_or_file(osp.join(image_dir, folder), list_dir=False,
                                                 suffix=IMAGE_SUFFIXES)):
                data_list.append(dict(img_path=osp.join(image_dir, folder, image),
                                      gt_label=label))
        if not data_list:
            raise ValueError(f'ObjectNet: no images of the {len(classes)} classes under '
                             f'{image_dir}')
        return data_list

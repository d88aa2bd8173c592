"""NYUv2 in the common layout of the depth literature (BTS, AdaBins, BinsFormer): images and depth
maps listed by split files, not by a folder walk.

    data/nyu/
      sync/<scene>_<id>/rgb_00045.jpg, sync_depth_00045.png       (training)
      official_splits/test/<scene>/rgb_00045.jpg, sync_depth_00045.png
      nyudepthv2_train_files_with_gt.txt
          /kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png 518.8579
      nyudepthv2_test_files_with_gt.txt
          bathroom/rgb_00045.jpg bathroom/sync_depth_00045.png 518.8579

(24,231 training and 652 test pairs, paper A.2.) Depth PNGs are uint16 millimetres, as mmseg's
NYU pipelines read them (``LoadDepthAnnotation(depth_rescale_factor=1e-3)``). mmseg's
``NYUDataset`` lists a folder and reads the scene class from the file name; here the split file
lists the pairs and the scene class comes from the folder (``kitchen_0028b`` -> ``kitchen``), with
mmseg's 27 NYUv2 scene classes; the rest (pipelines, ``DepthMetric``) is mmseg's.
"""
import os.path as osp
import re
from typing import List

from mmseg.datasets import NYUDataset

from genrep.registry import DATASETS


@DATASETS.register_module()
class NYUv2SplitDataset(NYUDataset):
    """NYUv2 pairs listed by a split file.

    Args:
        ann_file: the split file (relative to ``data_root``); each line ``<rgb> <depth> [focal]``,
            the paths relative to ``data_prefix['img_path']`` and ``data_prefix['depth_map_path']``;
            lines whose depth is ``None`` (no ground truth) are skipped.
        kwargs: ``NYUDataset``'s (``data_root``, ``data_prefix``, ``pipeline``, ``test_mode``...).
    """

    def __init__(self, ann_file: str, **kwargs):
        super().__init__(ann_file=ann_file, **kwargs)

    def scene_category(self, relative_path: str) -> int:
        """The scene class of the folder an image lies in (``living_room_0038`` ->
        ``living_room``), -1 when no folder names one of the dataset's classes."""
        classes = self._metainfo['classes']
        for folder in reversed(osp.dirname(relative_path).split('/')):
            name = re.sub(r'_\d.*$', '', folder)
            if name in classes:
                return classes.index(name)
        return -1

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'NYUv2SplitDataset: split file {self.ann_file} not found')
        img_dir = self.data_prefix.get('img_path', '')
        depth_dir = self.data_prefix.get('depth_map_path', '')
        data_list = []
        with open(self.ann_file) as f:
            lines = [line.split() for line in f if line.strip()]
        for number, fields in enumerate(lines, 1):
            if len(fields) < 2:
                raise ValueError(f'NYUv2SplitDataset: {self.ann_file} line {number}: expected '
                                 f'"<rgb> <depth> [focal]", got {" ".join(fields)!r}')
            rgb, depth = fields[0].lstrip('/'), fields[1].lstrip('/')
            if depth == 'None':
                continue
            data_list.append(dict(img_path=osp.join(img_dir, rgb),
                                  depth_map_path=osp.join(depth_dir, depth), seg_fields=[],
                                  category_id=self.scene_category(rgb)))
        return data_list

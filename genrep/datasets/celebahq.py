"""CelebA-HQ (Karras et al., 2018) as CelebAMask-HQ releases it, with one binary face attribute as
the class, for the perception head of GenRep's CelebA-HQ generation configs.

    CelebAMask-HQ/
      CelebA-HQ-img/<i>.jpg                     30,000 images, i = 0..29999 (1024 x 1024)
      CelebAMask-HQ-attribute-anno.txt          "30000", the 40 CelebA attribute names, then
                                                "<i>.jpg" and 40 values of 1 / -1 a line
      CelebA-HQ-to-CelebA-mapping.txt           "idx orig_idx orig_file" a line
      list_eval_partition.txt                   CelebA's own ("<orig_file> <0|1|2>": train, val,
                                                test); copied from CelebA, it is not in the archive

CelebA-HQ has no split of its own; ``split`` selects the images whose CelebA original is in
CelebA's official partition (about 24k / 3k / 3k).
"""
import os.path as osp
from typing import Dict, List

from mmpretrain.datasets import BaseDataset

from genrep.registry import DATASETS

SPLITS = {'train': '0', 'val': '1', 'test': '2'}


def _lines(path: str, what: str) -> List[str]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'CelebAHQ: {path} not found ({what})')
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


@DATASETS.register_module()
class CelebAHQ(BaseDataset):
    """CelebA-HQ images labelled by one CelebA attribute: class 1 where it is present.

    Args:
        data_root: the ``CelebAMask-HQ`` folder.
        split: 'train', 'val' or 'test' (CelebA's partition of the originals) or 'all'.
        attribute: one of the 40 attribute names of the annotation file (e.g. 'Male', 'Smiling').
        **kwargs: those of mmpretrain's ``BaseDataset`` (pipeline, test_mode, indices, ...).
    """

    def __init__(self, data_root: str, split: str = 'train', attribute: str = 'Male', **kwargs):
        if split not in (*SPLITS, 'all'):
            raise ValueError(f"CelebAHQ: split={split!r}; expected 'all' or one of "
                             f'{sorted(SPLITS)}')
        self.split, self.attribute = split, attribute
        metainfo = dict(classes=(f'not {attribute}', attribute))
        super().__init__(ann_file='', data_root=data_root, metainfo=metainfo, **kwargs)

    def _partition(self) -> Dict[str, str]:
        """CelebA-HQ file -> CelebA partition ('0', '1', '2')."""
        partition = dict(_lines(osp.join(self.data_root, 'list_eval_partition.txt'),
                                "CelebA's partition file, copied next to the annotations"))
        mapping = _lines(osp.join(self.data_root, 'CelebA-HQ-to-CelebA-mapping.txt'),
                         'the CelebAMask-HQ mapping to CelebA')
        return {f'{row[0]}.jpg': partition[row[2]] for row in mapping[1:]}

    def load_data_list(self) -> List[dict]:
        ann_file = osp.join(self.data_root, 'CelebAMask-HQ-attribute-anno.txt')
        rows = _lines(ann_file, 'the CelebAMask-HQ attribute annotations')
        names = rows[1]
        if self.attribute not in names:
            raise KeyError(f'CelebAHQ: attribute {self.attribute!r} is not in {ann_file} '
                           f'(it names {names})')
        column = names.index(self.attribute) + 1
        keep = None
        if self.split != 'all':
            partition = self._partition()
            keep = {name for name, part in partition.items() if part == SPLITS[self.split]}
        return [dict(img_path=osp.join(self.data_root, 'CelebA-HQ-img', row[0]),
                     gt_label=int(row[column] == '1'))
                for row in rows[2:] if keep is None or row[0] in keep]

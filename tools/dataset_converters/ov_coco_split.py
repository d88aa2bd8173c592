"""Write the open-vocabulary COCO annotation files from the official ones.

    python tools/dataset_converters/ov_coco_split.py --data-root data/coco

reads ``annotations/instances_{train,val}2017.json`` and writes

- ``annotations/instances_train2017_ov_base.json``: the 48 base classes only (their categories and
  annotations; images without a base box left out), what an OV-COCO detector trains on;
- ``annotations/instances_val2017_ov_all.json``: the 65 base + novel classes (images without one
  of their boxes left out), what OVCocoMetric scores AP50 base / novel / all on,

as mmdet's ``tools/dataset_converters/coco2ovd.py`` does. The split (48 / 17 names) is read from
``configs/_base_/datasets/ov_coco_split.py``, the one place the configs read it from too.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Sequence

from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SPLIT_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'ov_coco_split.py')
OUTPUTS = (('instances_train2017.json', 'instances_train2017_ov_base.json', 'base'),
           ('instances_val2017.json', 'instances_val2017_ov_all.json', 'all'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', default='data/coco',
                        help='COCO root holding annotations/instances_{train,val}2017.json')
    parser.add_argument('--split-config', default=SPLIT_CONFIG,
                        help='config file with ov_coco_base_classes and ov_coco_novel_classes')
    return parser.parse_args(argv)


def keep_classes(data: dict, names: Sequence[str], source: str) -> dict:
    """``data`` (a COCO instances json) restricted to the categories named ``names``: their
    categories and annotations, and the images holding at least one of those annotations."""
    by_name = {c['name']: c['id'] for c in data['categories']}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f'{source}: no categories named {missing}')
    ids = {by_name[name] for name in names}
    annotations = [a for a in data['annotations'] if a['category_id'] in ids]
    with_boxes = {a['image_id'] for a in annotations}
    return dict(data, categories=[c for c in data['categories'] if c['id'] in ids],
                annotations=annotations,
                images=[image for image in data['images'] if image['id'] in with_boxes])


def main(argv=None):
    args = parse_args(argv)
    split = Config.fromfile(args.split_config)
    names = dict(base=list(split.ov_coco_base_classes),
                 all=list(split.ov_coco_base_classes) + list(split.ov_coco_novel_classes))
    for source, target, which in OUTPUTS:
        path = osp.join(args.data_root, 'annotations', source)
        try:
            with open(path) as f:
                data = json.load(f)
            out = keep_classes(data, names[which], path)
        except (OSError, ValueError, KeyError) as error:
            sys.exit(f'ov_coco_split.py: error: {path}: {error}')
        with open(osp.join(args.data_root, 'annotations', target), 'w') as f:
            json.dump(out, f)
        print(f'{target}: {len(out["categories"])} classes, {len(out["images"])} images, '
              f'{len(out["annotations"])} boxes')


if __name__ == '__main__':
    main()

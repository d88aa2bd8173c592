"""Write the OV-LVIS training annotation file from the official one: rare categories held out.

    python tools/dataset_converters/lvis_remove_rare.py --data-root data/lvis_v1

reads ``annotations/lvis_v1_train.json`` and writes ``annotations/lvis_v1_train_norare.json``
without the annotations of the categories whose ``frequency`` is 'r' (ViLD's OV-LVIS protocol:
the 337 rare classes are the novel ones). The category list is kept whole, so mmdet's
``LVISV1Dataset`` maps category ids to the same 1203 labels as for the validation file; a rare
class then has no box to train on. It also writes ``annotations/lvis_v1_categories.json``, the
category list (id, name, frequency) from which ``genrep.LVISV1VocabularyDataset`` takes the
866-name training vocabulary (the common and frequent classes, ViLD's and BARON's) without
reading the annotation file.
"""
import argparse
import json
import os.path as osp
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', default='data/lvis_v1',
                        help='LVIS root holding annotations/lvis_v1_train.json')
    return parser.parse_args(argv)


def remove_rare(data: dict, source: str) -> dict:
    """``data`` (an LVIS v1 json) without the annotations of its rare categories."""
    missing = [c.get('id') for c in data['categories'] if 'frequency' not in c]
    if missing:
        raise ValueError(f'{source}: categories {missing[:5]} have no frequency field')
    rare = {c['id'] for c in data['categories'] if c['frequency'] == 'r'}
    return dict(data, annotations=[a for a in data['annotations'] if a['category_id'] not in rare])


def main(argv=None):
    args = parse_args(argv)
    path = osp.join(args.data_root, 'annotations', 'lvis_v1_train.json')
    try:
        with open(path) as f:
            out = remove_rare(json.load(f), path)
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f'lvis_remove_rare.py: error: {path}: {error}')
    target = osp.join(args.data_root, 'annotations', 'lvis_v1_train_norare.json')
    with open(target, 'w') as f:
        json.dump(out, f)
    print(f'{target}: {len(out["annotations"])} boxes of non-rare classes')
    categories = osp.join(args.data_root, 'annotations', 'lvis_v1_categories.json')
    with open(categories, 'w') as f:
        json.dump([dict(id=c['id'], name=c['name'], frequency=c['frequency'])
                   for c in out['categories']], f)
    print(f'{categories}: {len(out["categories"])} categories')


if __name__ == '__main__':
    main()

"""Write the embedded scenes of real objects: photo cut-outs composed onto real backgrounds, as
the on-disk trees the OpenMMLab datasets read.

    python tools/dataset_converters/make_scenes.py --out data/scenes --seed 0 \\
        [--num-train 400 --num-val 100 --size 128 --max-objects 4 ...]

From one set of scenes (``scene_composer.py`` beside it, one compositing code) it writes

- ``ade/``: closed-set segmentation, mmseg ADE20K layout (``images|annotations/{training,
  validation}``), super-categories as classes 1..N, 0 = unlabelled (``reduce_zero_label=True``),
  ``ade/classes.json`` with names and palette;
- ``cocostuff/``: open-vocabulary segmentation, mmseg COCO-Stuff layout (``images/{train2017,
  val2017}/*.jpg``, ``annotations/{...}/*_labelTrainIds.png``, 255 ignore), fine categories as
  classes, the unseen ones absent from every train scene; ``cocostuff/classes.json`` lists them;
- ``coco/``: COCO instance json (``annotations/instances_{train,val}.json``, RLE masks after
  occlusion, categories named by the stamps' English names, base only in train), the base/novel
  split (``annotations/category_split.json``), LVIS-v1-style json
  (``annotations/lvis_v1_{train,val}.json``, rare categories' annotations left out of train) and
  the same boxes and masks named by super-category with a base/novel split of those
  (``annotations/instances_{train,val}_coarse.json``, ``category_split_coarse.json``: the
  vocabulary of the CPU open-vocabulary detection job; novel objects unannotated in train);
- ``nyu/``: depth, mmseg NYU layout (``images|annotations/{train,test}``), uint16 PNG in
  millimetres (mmseg's ``LoadDepthAnnotation(depth_rescale_factor=1e-3)``), scenes of cut-outs
  standing on a ground plane under a pinhole camera (``nyu/camera.json``);
- ``meta/``: every scene's placements, for provenance and tests.

The same ``--seed`` gives the same bytes in every file.
"""
import argparse
import io
import json
import os
import os.path as osp
import shutil
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # the sibling scene_composer

from scene_composer import (STAMPS_DIR, TEMPLATES_DIR, PinholeCamera, SceneCanvas,  # noqa: E402
                            Stamp, background_crop, compose, free_layout, ground_layout,
                            load_backgrounds, load_stamp_catalogue)

TREES = ('ade', 'cocostuff', 'coco', 'nyu', 'meta')
SPLITS = dict(train=dict(code=0, ade='training', cocostuff='train2017'),
              val=dict(code=1, ade='validation', cocostuff='val2017'))
DEPTH_SPLITS = dict(train=2, test=3)
PALETTE_SEED = 2024  # palettes are fixed, whatever --seed is
MILLIMETRES = 1000.0  # mmseg's NYU config reads depth PNGs with depth_rescale_factor=1e-3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, help='output root, e.g. data/scenes')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--num-depth-train', type=int, help='default: --num-train')
    parser.add_argument('--num-depth-test', type=int, help='default: --num-val')
    parser.add_argument('--size', type=int, default=128, help='square scene side in pixels')
    parser.add_argument('--max-objects', type=int, default=4)
    parser.add_argument('--unseen-fraction', type=float, default=0.2,
                        help='fraction of fine categories held out of training')
    parser.add_argument('--lvis-fractions', type=float, nargs=2, default=(0.005, 0.02),
                        metavar=('RARE', 'COMMON'),
                        help='LVIS frequency bins as fractions of the train images: rare if a '
                        'category is in at most RARE of them, common if at most COMMON')
    parser.add_argument('--novel-coarse-fraction', type=float, default=0.25,
                        help='fraction of super-categories that are novel in the coarse '
                        'detection json (unannotated in train)')
    parser.add_argument('--jpeg-quality', type=int, default=95)
    parser.add_argument('--stamps-dir', default=STAMPS_DIR)
    parser.add_argument('--templates-dir', default=TEMPLATES_DIR)
    parser.add_argument('--force', action='store_true',
                        help=f'replace the {", ".join(TREES)} folders of a non-empty --out')
    return parser.parse_args(argv)


def held_out_fine(stamps: Sequence[Stamp], fraction: float, seed: int) -> List[str]:
    """Fine categories held out of training: ``round(fraction * #fine)`` of them, drawn with the
    seed among those whose super-category keeps another, seen, fine category (so every
    closed-set class is trained)."""
    fine_to_coarse = {s.fine: s.coarse for s in stamps}
    rng = np.random.default_rng([seed, 7])
    seen_per_coarse: Dict[str, int] = {}
    for coarse in fine_to_coarse.values():
        seen_per_coarse[coarse] = seen_per_coarse.get(coarse, 0) + 1
    unseen = []
    for fine in rng.permutation(sorted(fine_to_coarse)):
        if len(unseen) == int(round(fraction * len(fine_to_coarse))):
            break
        if seen_per_coarse[fine_to_coarse[fine]] > 1:
            seen_per_coarse[fine_to_coarse[fine]] -= 1
            unseen.append(str(fine))
    return sorted(unseen)


def palette(count: int) -> List[List[int]]:
    return np.random.default_rng(PALETTE_SEED).integers(0, 256, (count, 3)).tolist()


def encode_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, 'PNG')
    return buffer.getvalue()


def write_bytes(path: str, data: bytes):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def write_json(path: str, obj):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=1)


def placement_record(canvas: SceneCanvas, index: int, stamps_dir: str) -> dict:
    p = canvas.placements[index]
    record = dict(stamp=osp.relpath(p.stamp.path, stamps_dir), name=p.stamp.name,
                  fine=p.stamp.fine, coarse=p.stamp.coarse, left=p.left, top=p.top,
                  width=p.width, height=p.height, flip=p.flip)
    if p.depth is not None:
        record['depth'] = p.depth
    return record


def instance_annotations(canvas: SceneCanvas, name_ids: Dict[str, int]) -> List[dict]:
    """COCO annotations (without ids) of the visible part of every placement, RLE-encoded."""
    from pycocotools import mask as mask_utils
    annotations = []
    for index, placement in enumerate(canvas.placements):
        mask = np.asfortranarray((canvas.instances == index).astype(np.uint8))
        rle = mask_utils.encode(mask)
        annotations.append(dict(category_id=name_ids[placement.stamp.name],
                                segmentation=dict(size=[int(n) for n in rle['size']],
                                                  counts=rle['counts'].decode('ascii')),
                                area=int(mask.sum()),
                                bbox=[float(v) for v in mask_utils.toBbox(rle)],
                                iscrowd=0))
    return annotations


def write_segmentation_scenes(args, stamps: List[Stamp], backgrounds, classes: dict) -> dict:
    """Compose the train and val scenes and write the ADE, COCO-Stuff and image parts of the COCO
    trees; returns the per-split COCO annotations and scene records."""
    coarse_ids = {name: i + 1 for i, name in enumerate(classes['coarse'])}
    fine_ids = {name: i for i, name in enumerate(classes['fine'])}
    name_ids = {name: i + 1 for i, name in enumerate(classes['names'])}
    unseen = set(classes['unseen'])
    pools = dict(train=[s for s in stamps if s.fine not in unseen], val=stamps)
    counts = dict(train=args.num_train, val=args.num_val)
    min_visible = max(16, args.size * args.size // 500)
    results = {}
    for split, info in SPLITS.items():
        images, annotations, records = [], [], []
        for index in range(counts[split]):
            rng = np.random.default_rng([args.seed, info['code'], index])
            background = background_crop(backgrounds, args.size, rng)
            candidates, keep = free_layout(pools[split], args.size, rng, args.max_objects)
            canvas = compose(background, candidates, keep, min_visible)
            stem = f'scene_{index:06d}'
            jpeg = io.BytesIO()
            Image.fromarray(canvas.rgb()).save(jpeg, 'JPEG', quality=args.jpeg_quality)
            owner = canvas.instances
            coarse = np.zeros(owner.shape, np.uint8)
            fine = np.full(owner.shape, 255, np.uint8)
            for k, placement in enumerate(canvas.placements):
                coarse[owner == k] = coarse_ids[placement.stamp.coarse]
                fine[owner == k] = fine_ids[placement.stamp.fine]
            out = args.out
            write_bytes(f'{out}/ade/images/{info["ade"]}/{stem}.jpg', jpeg.getvalue())
            write_bytes(f'{out}/ade/annotations/{info["ade"]}/{stem}.png', encode_png(coarse))
            write_bytes(f'{out}/cocostuff/images/{info["cocostuff"]}/{stem}.jpg', jpeg.getvalue())
            write_bytes(f'{out}/cocostuff/annotations/{info["cocostuff"]}/{stem}_labelTrainIds.png',
                        encode_png(fine))
            write_bytes(f'{out}/coco/{info["cocostuff"]}/{stem}.jpg', jpeg.getvalue())
            image_id = index + 1
            images.append(dict(id=image_id, file_name=f'{stem}.jpg', width=args.size,
                               height=args.size))
            for annotation in instance_annotations(canvas, name_ids):
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id, **annotation))
            records.append(dict(file=stem, objects=[
                placement_record(canvas, k, args.stamps_dir) for k in range(len(canvas.placements))
            ]))
        results[split] = dict(images=images, annotations=annotations, records=records)
    return results


def coco_categories(names: Sequence[str], keep: Sequence[str]) -> List[dict]:
    return [dict(id=i + 1, name=name, supercategory='object')
            for i, name in enumerate(names) if name in set(keep)]


def lvis_json(split_data: dict, categories: List[dict], frequency: Dict[int, Tuple[str, int]],
              split: str, drop: set) -> dict:
    """LVIS v1 layout: ``coco_url`` relative to the data root (mmdet's LVISV1Dataset strips the
    COCO host from it), every absent category a verified negative (the scenes are annotated
    exhaustively), ``frequency``, ``image_count`` and ``instance_count`` on categories;
    annotations of categories in ``drop`` left out."""
    present: Dict[int, set] = {}
    annotations = []
    for annotation in split_data['annotations']:
        present.setdefault(annotation['image_id'], set()).add(annotation['category_id'])
        if annotation['category_id'] not in drop:
            annotations.append(dict(annotation, id=len(annotations) + 1))
    category_ids = [c['id'] for c in categories]
    images = []
    for image in split_data['images']:
        here = present.get(image['id'], set())
        images.append(dict(image, coco_url=f'{SPLITS[split]["cocostuff"]}/{image["file_name"]}',
                           neg_category_ids=[c for c in category_ids if c not in here],
                           not_exhaustive_category_ids=[]))
    instance_counts: Dict[int, int] = {}
    for annotation in annotations:
        instance_counts[annotation['category_id']] = \
            instance_counts.get(annotation['category_id'], 0) + 1
    lvis_categories = [dict(c, synset=c['name'].replace(' ', '_') + '.n.01', synonyms=[c['name']],
                            frequency=frequency[c['id']][0], image_count=frequency[c['id']][1],
                            instance_count=instance_counts.get(c['id'], 0), **{'def': c['name']})
                       for c in categories]
    return dict(info=dict(description='genrep embedded scenes, LVIS v1 layout'), licenses=[],
                images=images, annotations=annotations, categories=lvis_categories)


def lvis_frequency(train: dict, names: Sequence[str], fractions) -> Dict[int, Tuple[str, int]]:
    """Category id -> (frequency, train image count), binned as LVIS does on the number of train
    images a category is annotated in ('r' <= rare, 'c' <= common, 'f' above), with the bin edges
    as fractions of the train images (LVIS's 10 and 100 suit its 100k images, not a few hundred)."""
    images: Dict[int, set] = {}
    for annotation in train['annotations']:
        images.setdefault(annotation['category_id'], set()).add(annotation['image_id'])
    rare_max = max(1, int(fractions[0] * len(train['images'])))
    common_max = max(rare_max + 1, int(fractions[1] * len(train['images'])))
    frequency = {}
    for i in range(1, len(names) + 1):
        count = len(images.get(i, ()))
        frequency[i] = ('r' if count <= rare_max else 'c' if count <= common_max else 'f', count)
    return frequency


def novel_coarse(coarse: Sequence[str], fraction: float, seed: int) -> List[str]:
    """Super-categories that are novel in the coarse detection json: ``round(fraction *
    #coarse)`` of them, drawn with the seed."""
    count = int(round(fraction * len(coarse)))
    return sorted(str(c) for c in np.random.default_rng([seed, 11]).permutation(sorted(coarse))
                  [:count])


def coarse_detection_json(split_data: dict, coarse: Sequence[str], keep: Sequence[str]) -> dict:
    """The split's COCO json with each annotation named by its object's super-category
    (category ids 1..#coarse in ``coarse``'s order); categories and annotations outside ``keep``
    left out, images kept (their other objects are background, as in OV-COCO's base training
    json)."""
    ids = {name: i + 1 for i, name in enumerate(coarse)}
    keep = set(keep)
    placements = {}  # image id -> the super-categories of its placements, in annotation order
    for image, record in zip(split_data['images'], split_data['records']):
        placements[image['id']] = [obj['coarse'] for obj in record['objects']]
    annotations, seen = [], {}
    for annotation in split_data['annotations']:
        index = seen.get(annotation['image_id'], 0)
        seen[annotation['image_id']] = index + 1
        name = placements[annotation['image_id']][index]
        if name in keep:
            annotations.append(dict(annotation, id=len(annotations) + 1, category_id=ids[name]))
    return dict(info=dict(description='genrep embedded scenes, super-categories'), licenses=[],
                images=split_data['images'], annotations=annotations,
                categories=coco_categories(coarse, keep))


def write_detection_json(args, results: dict, classes: dict):
    names, base, novel = classes['names'], classes['base'], classes['novel']
    root = f'{args.out}/coco/annotations'
    for split, keep in (('train', base), ('val', names)):
        data = results[split]
        write_json(f'{root}/instances_{split}.json', dict(
            info=dict(description='genrep embedded scenes'), licenses=[], images=data['images'],
            annotations=data['annotations'], categories=coco_categories(names, keep)))
    write_json(f'{root}/category_split.json', dict(base=base, novel=novel))
    frequency = lvis_frequency(results['train'], names, args.lvis_fractions)
    rare = {i for i, (bin_, _) in frequency.items() if bin_ == 'r'}
    all_categories = coco_categories(names, names)
    write_json(f'{root}/lvis_v1_train.json',
               lvis_json(results['train'], all_categories, frequency, 'train', drop=rare))
    write_json(f'{root}/lvis_v1_val.json',
               lvis_json(results['val'], all_categories, frequency, 'val', drop=set()))
    coarse = classes['coarse']
    novel = novel_coarse(coarse, args.novel_coarse_fraction, args.seed)
    base = [name for name in coarse if name not in novel]
    for split, keep in (('train', base), ('val', coarse)):
        write_json(f'{root}/instances_{split}_coarse.json',
                   coarse_detection_json(results[split], coarse, keep))
    write_json(f'{root}/category_split_coarse.json', dict(base=base, novel=novel))


def nearest_class(canvas: SceneCanvas):
    """The super-category of the placement nearest the camera (never occluded, drawn largest),
    or None in an empty scene."""
    if not canvas.placements:
        return None
    return min(canvas.placements, key=lambda p: p.depth).stamp.coarse


def write_depth_scenes(args, stamps: List[Stamp], backgrounds, coarse: Sequence[str]):
    """NYU layout: images/{train,test}/scene_*.jpg and annotations/{train,test}/scene_*.png, the
    PNG uint16 millimetres; objects at their depth, near over far, on the floor / far backdrop.
    ``nyu/classes.json``: the super-categories ``coarse`` as ``classes`` and, per split, each
    scene's class (the nearest object's; null when empty), the scene class that NYUv2's file
    names carry."""
    camera = PinholeCamera.for_size(args.size)
    floor = camera.floor_depth(args.size)
    counts = dict(train=args.num_depth_train, test=args.num_depth_test)
    min_visible = max(16, args.size * args.size // 500)
    scene_classes = {}
    for split, code in DEPTH_SPLITS.items():
        records, scene_classes[split] = [], {}
        for index in range(counts[split]):
            rng = np.random.default_rng([args.seed, code, index])
            background = background_crop(backgrounds, args.size, rng)
            candidates, keep = ground_layout(stamps, args.size, rng, camera, args.max_objects)
            canvas = compose(background, candidates, keep, min_visible)
            depth = floor.copy()
            for k, placement in enumerate(canvas.placements):
                depth[canvas.instances == k] = placement.depth
            stem = f'scene_{index:06d}'
            scene_classes[split][stem] = nearest_class(canvas)
            jpeg = io.BytesIO()
            Image.fromarray(canvas.rgb()).save(jpeg, 'JPEG', quality=args.jpeg_quality)
            write_bytes(f'{args.out}/nyu/images/{split}/{stem}.jpg', jpeg.getvalue())
            depth_mm = np.rint(depth * MILLIMETRES).astype(np.uint16)
            write_bytes(f'{args.out}/nyu/annotations/{split}/{stem}.png', encode_png(depth_mm))
            records.append(dict(file=stem, objects=[
                placement_record(canvas, k, args.stamps_dir) for k in range(len(canvas.placements))
            ]))
        write_json(f'{args.out}/meta/depth_{split}.json', records)
    write_json(f'{args.out}/nyu/classes.json', dict(classes=list(coarse), **scene_classes))
    write_json(f'{args.out}/nyu/camera.json', dict(
        focal=camera.focal, cx=args.size / 2.0, cy=camera.horizon, camera_height=camera.height,
        far=camera.far, depth_unit='mm', depth_rescale_factor=1.0 / MILLIMETRES))


def class_lists(stamps: List[Stamp], unseen_fraction: float, seed: int) -> dict:
    unseen = held_out_fine(stamps, unseen_fraction, seed)
    names = sorted({s.name for s in stamps})
    base = sorted({s.name for s in stamps if s.fine not in unseen})
    fine = sorted({s.fine for s in stamps})
    return dict(coarse=sorted({s.coarse for s in stamps}), fine=fine, unseen=unseen,
                seen=[f for f in fine if f not in unseen], names=names, base=base,
                novel=[n for n in names if n not in base])


def prepare_out(out: str, force: bool):
    if osp.isdir(out) and os.listdir(out):
        if not force:
            raise FileExistsError(f'{out}: not empty; pass --force to replace its '
                                  f'{", ".join(TREES)} folders')
        for tree in TREES:
            shutil.rmtree(osp.join(out, tree), ignore_errors=True)
    os.makedirs(out, exist_ok=True)


def main(argv=None):
    args = parse_args(argv)
    args.num_depth_train = args.num_train if args.num_depth_train is None else args.num_depth_train
    args.num_depth_test = args.num_val if args.num_depth_test is None else args.num_depth_test
    try:
        stamps = load_stamp_catalogue(args.stamps_dir)
        backgrounds = load_backgrounds(args.templates_dir)
        prepare_out(args.out, args.force)
    except (FileNotFoundError, FileExistsError) as error:
        sys.exit(f'make_scenes.py: error: {error}')
    classes = class_lists(stamps, args.unseen_fraction, args.seed)
    write_json(f'{args.out}/ade/classes.json', dict(
        classes=classes['coarse'], palette=palette(len(classes['coarse'])),
        reduce_zero_label=True))
    write_json(f'{args.out}/cocostuff/classes.json', dict(
        classes=classes['fine'], palette=palette(len(classes['fine'])), seen=classes['seen'],
        unseen=classes['unseen'], ignore_index=255))
    results = write_segmentation_scenes(args, stamps, backgrounds, classes)
    for split in SPLITS:
        write_json(f'{args.out}/meta/{split}.json', results[split]['records'])
    write_detection_json(args, results, classes)
    write_depth_scenes(args, stamps, backgrounds, classes['coarse'])


if __name__ == '__main__':
    main()

"""Write Fashion-MNIST-Shift: the 10,000 Fashion-MNIST test images under the shifts ObjectNet
controls (Barbu et al. 2019: object rotation, background, viewpoint), in Fashion-MNIST's own idx
layout, so the out-of-distribution test of a model trained on Fashion-MNIST is the stock
``genrep.FashionMNIST`` dataset pointed at another ``data_root``.

    python tools/dataset_converters/make_fmnist_shift.py --out data/fmnist_shift --seed 0

Each test image, with its label unchanged, is rotated by an angle in +-``--max-angle`` degrees,
scaled by a factor in [``--min-scale``, 1] about its centre (a change of apparent size, the
nearest a 28x28 grayscale image comes to a viewpoint change), and composited onto a grayscale crop
of a real background photo (Debian's tuxpaint-data templates) dimmed to ``--background-level``: the
garment keeps its pixels where it has ink, the photo shows through where Fashion-MNIST's background
was black. The same ``--seed`` gives the same bytes.

Writes ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (split 'test') and
``shift.json`` (the arguments and each image's angle, scale and background) and ``examples.png``
(the first ``EXAMPLES`` test images, as Fashion-MNIST has them above and shifted below).
"""
import argparse
import gzip
import json
import os
import os.path as osp
import sys
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

from genrep.datasets.fashion_mnist import IMAGES_MAGIC, LABELS_MAGIC, read_idx_file

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # the sibling scene_composer

from scene_composer import TEMPLATES_DIR, background_crop, load_backgrounds  # noqa: E402

# The garment's opacity: full from this ink level up, so the antialiased rim blends into the photo.
FULL_INK = 64.0
EXAMPLES = 8  # images in examples.png


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/fmnist_shift')
    parser.add_argument('--source', default='/usr/share/datasets/fashion-mnist',
                        help='directory of the Fashion-MNIST idx files')
    parser.add_argument('--templates-dir', default=TEMPLATES_DIR)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-angle', type=float, default=45.0)
    parser.add_argument('--min-scale', type=float, default=0.7)
    parser.add_argument('--background-level', type=float, default=0.6,
                        help='the photo is scaled to this fraction of its brightness')
    parser.add_argument('--limit', type=int, default=None, help='first N test images only')
    return parser.parse_args(argv)


def rotate_and_scale(image: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """``image`` [H, W] uint8 rotated by ``angle`` degrees (counter-clockwise) and scaled by
    ``scale`` about its centre, bilinear, black outside; float32 [H, W] in [0, 255]."""
    height, width = image.shape
    theta = np.deg2rad(angle)
    # PIL's affine maps each output point to the input, the inverse of rotate-then-scale, in
    # continuous coordinates where pixel i spans [i, i + 1): the centre is (W / 2, H / 2).
    cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
    cx, cy = width / 2, height / 2
    matrix = (cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy)
    warped = Image.fromarray(image).transform((width, height), Image.AFFINE, matrix,
                                              resample=Image.BILINEAR, fillcolor=0)
    return np.asarray(warped, dtype=np.float32)


def composite(garment: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The garment [H, W] (float, black background) over the photo [H, W] (float): opacity
    min(ink / FULL_INK, 1); uint8."""
    alpha = np.clip(garment / FULL_INK, 0.0, 1.0)
    return np.rint(alpha * garment + (1.0 - alpha) * background).clip(0, 255).astype(np.uint8)


def shift_image(image: np.ndarray, backgrounds: Sequence[Image.Image], rng: np.random.Generator,
                max_angle: float, min_scale: float, background_level: float
                ) -> Tuple[np.ndarray, dict]:
    """One shifted image and what was drawn for it."""
    angle = float(rng.uniform(-max_angle, max_angle))
    scale = float(rng.uniform(min_scale, 1.0))
    photo = background_crop(backgrounds, image.shape[0], rng)
    gray = np.asarray(Image.fromarray(photo).convert('L'), dtype=np.float32) * background_level
    shifted = composite(rotate_and_scale(image, angle, scale), gray)
    return shifted, dict(angle=round(angle, 3), scale=round(scale, 4))


def write_idx(path: str, array: np.ndarray, magic: int):
    header = np.array([magic, *array.shape], dtype='>u4').tobytes()
    # mtime 0: the same arrays give the same bytes
    with open(path, 'wb') as raw, gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def examples_picture(images: np.ndarray, shifted: np.ndarray, count: int = EXAMPLES) -> Image.Image:
    """The first ``count`` images [N, H, W] in a row above their shifted versions, 2 px apart."""
    count = min(count, len(images))
    height, width = images.shape[1:]
    canvas = np.full((2 * height + 2, count * (width + 2) - 2), 255, dtype=np.uint8)
    for row, source in enumerate((images, shifted)):
        for i in range(count):
            top, left = row * (height + 2), i * (width + 2)
            canvas[top:top + height, left:left + width] = source[i]
    return Image.fromarray(canvas)


def main(argv=None):
    args = parse_args(argv)
    source = args.source
    images = read_idx_file(_idx_path(source, 't10k-images-idx3-ubyte'), IMAGES_MAGIC)
    labels = read_idx_file(_idx_path(source, 't10k-labels-idx1-ubyte'), LABELS_MAGIC)
    if args.limit is not None:
        images, labels = images[:args.limit], labels[:args.limit]
    backgrounds = load_backgrounds(args.templates_dir)
    rng = np.random.default_rng(args.seed)
    shifted = np.empty_like(images)
    records = []
    for i, image in enumerate(images):
        shifted[i], record = shift_image(image, backgrounds, rng, args.max_angle,
                                         args.min_scale, args.background_level)
        records.append(record)
    os.makedirs(args.out, exist_ok=True)
    write_idx(osp.join(args.out, 't10k-images-idx3-ubyte.gz'), shifted, IMAGES_MAGIC)
    write_idx(osp.join(args.out, 't10k-labels-idx1-ubyte.gz'), labels, LABELS_MAGIC)
    with open(osp.join(args.out, 'shift.json'), 'w') as f:
        json.dump(dict(arguments=vars(args), images=records), f)
    examples_picture(images, shifted).save(osp.join(args.out, 'examples.png'))
    print(f'{len(shifted)} shifted Fashion-MNIST test images written to {args.out}')


def _idx_path(root: str, stem: str) -> str:
    for name in (stem, stem + '.gz'):
        if osp.isfile(osp.join(root, name)):
            return osp.join(root, name)
    sys.exit(f'{root}: no {stem}[.gz]: install dataset-fashion-mnist or pass --source')


if __name__ == '__main__':
    main()

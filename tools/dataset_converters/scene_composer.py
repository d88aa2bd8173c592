"""Scenes of real objects: photo cut-outs (Debian ``tuxpaint-stamps-default``, alpha = exact mask)
composed onto crops of real photos (``tuxpaint-data`` templates).

This module holds what every scene tree shares: the stamp catalogue (fine category, super-category
and English name of each cut-out), the two layouts (free 2-D placement and objects standing on a
ground plane under a pinhole camera) and :class:`SceneCanvas`, the one compositing code from which
the image, the instance map (hence every label map and mask) and the depth map are all derived.
``make_scenes.py`` beside it writes the trees (and ``make_fmnist_shift.py`` reads the
backgrounds); the converters import it as a sibling module, no package code reads it. The package
files are GPL: they are read from their installed paths, never copied into the repository.
"""
import glob
import os.path as osp
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

STAMPS_DIR = '/usr/share/tuxpaint/stamps'
TEMPLATES_DIR = '/usr/share/tuxpaint/templates'
INSTALL_HINT = 'run tools/install.sh (Debian packages tuxpaint-stamps-default and tuxpaint-data)'

MASK_THRESHOLD = 128  # alpha >= 128 is object; the image itself blends with the soft alpha
MIN_MASK_FRACTION = 0.05  # cut-outs whose mask fills less of their box (a glass) are unused

# Longest matching path prefix under stamps/ -> (fine category, super-category). Fine categories
# are the classes of the open-vocabulary (COCO-Stuff-style) tree, super-categories those of the
# closed-set (ADE-style) tree. Stamps under no prefix (symbols, cartoons, people, military other
# than vehicles, natural forces, food/pizza) are not used.
STAMP_GROUPS = (
    ('animals/mammals/apes', 'ape', 'mammal'),
    ('animals/mammals/aquatic', 'marine mammal', 'mammal'),
    ('animals/mammals/bears', 'bear', 'mammal'),
    ('animals/mammals/bovines', 'cattle and sheep', 'mammal'),
    ('animals/mammals/camel', 'camel', 'mammal'),
    ('animals/mammals/cats', 'big cat', 'mammal'),
    ('animals/mammals/deer', 'deer', 'mammal'),
    ('animals/mammals/dogs', 'dog', 'mammal'),
    ('animals/mammals/equines', 'horse', 'mammal'),
    ('animals/mammals/rodents', 'rodent', 'mammal'),
    ('animals/mammals', 'wild mammal', 'mammal'),
    ('animals/marsupials', 'marsupial', 'mammal'),
    ('animals/birds', 'bird', 'bird'),
    ('animals/fish', 'fish', 'sea creature'),
    ('animals/shellfish', 'shellfish', 'sea creature'),
    ('animals/insects', 'insect', 'small creature'),
    ('animals/lizards', 'reptile', 'small creature'),
    ('animals/amphibians', 'frog', 'small creature'),
    ('clothes/hats', 'hat', 'clothing'),
    ('clothes', 'garment', 'clothing'),
    ('food/fruit', 'fruit', 'fruit'),
    ('food/nuts', 'nut', 'fruit'),
    ('food/vegetables', 'vegetable', 'vegetable'),
    ('food/spices', 'vegetable', 'vegetable'),
    ('hobbies/music/percussion', 'drum', 'musical instrument'),
    ('hobbies/music/string', 'string instrument', 'musical instrument'),
    ('hobbies/music', 'wind instrument', 'musical instrument'),
    ('hobbies', 'optical device', 'household object'),
    ('household/arttools', 'stationery', 'tool'),
    ('household/tools', 'hand tool', 'tool'),
    ('household/dishes', 'kitchenware', 'household object'),
    ('household', 'household appliance', 'household object'),
    ('medical', 'medical item', 'household object'),
    ('plants/flowers', 'flower', 'flower'),
    ('plants/mushrooms', 'mushroom', 'plant'),
    ('plants/trees', 'tree', 'plant'),
    ('plants', 'herb', 'plant'),
    ('seasonal/christmas', 'christmas item', 'holiday item'),
    ('seasonal/easter', 'easter item', 'holiday item'),
    ('seasonal/halloween', 'halloween item', 'holiday item'),
    ('seasonal/hanukkah', 'hanukkah item', 'holiday item'),
    ('seasonal', 'party item', 'holiday item'),
    ('space/planets', 'planet', 'space object'),
    ('space/moon', 'moon', 'space object'),
    ('space', 'spacecraft', 'space object'),
    ('sports', 'sports equipment', 'sports gear'),
    ('town/flags', 'flag', 'street object'),
    ('town/roadsigns', 'road sign', 'street object'),
    ('town/monuments', 'monument', 'street object'),
    ('town', 'mailbox', 'street object'),
    ('vehicles/flight', 'aircraft', 'vehicle'),
    ('vehicles/ship', 'boat', 'vehicle'),
    ('vehicles', 'road vehicle', 'vehicle'),
    ('military/vehicles', 'military vehicle', 'vehicle'),
)
SKIPPED_FOLDERS = ('cartoon', 'symbols')

# First lines that are a sentence, not a name; the rules in stamp_name handle the rest.
NAME_OVERRIDES = {
    'animals/fish/bluegroper': 'blue groper',
    'animals/fish/lionfish': 'lionfish',
    'animals/mammals/bovines/gnu-baby': 'baby gnu',
    'animals/mammals/bovines/gnu-baby-stand': 'baby gnu',
    'food/vegetables/broccoli': 'broccoli',
    'food/vegetables/tomato': 'tomato',
    'household/toilet': 'toilet',
    'military/vehicles/bradley': 'armoured personnel carrier',
    'military/vehicles/infantry-stryker': 'armoured personnel carrier',
    'military/vehicles/ww2_german_gun': 'field gun',
    'plants/mushrooms/cep-2': 'cep',
    'seasonal/christmas/German_Christmas_toy': 'wooden toy',
    'seasonal/hanukkah/menorah': 'menorah',
    'town/roadsigns/dead_end_sign': 'dead end sign',
    'town/roadsigns/no_entry_sign': 'no entry sign',
    'town/roadsigns/roundabout': 'roundabout sign',
    'town/roadsigns/school_sign': 'school sign',
    'vehicles/emergency/sedan_police': 'police car emblems',
}
NAME_OVERRIDES.update({f'seasonal/hanukkah/dreydl-{letter}': 'dreidel'
                       for letter in ('gimmel', 'hay', 'nun', 'shin')})

_QUOTES = re.compile('[\u201c\u201d\u2018\u2019"\']')
_CLAUSE_END = re.compile(r'[.!?(,\u2014:;]')
_VERB = re.compile(r' (?:is|are|means|stands for|lets|resembles|used in|making|as a|in its|with an?'
                   r'|inside|hatched|covered in|called)\b')
_DETERMINER = re.compile(r'^(?:a|an|the|some|two|our|another|very)\s+')
_QUANTITY = re.compile(r'^(?:pair|bunch|head|string|quarter|plant) of\s+')


def stamp_name(first_line: str) -> str:
    """The English name a stamp's ``.txt`` first line gives, normalised: quotes dropped, cut at the
    first clause end or verb ("A candy cane is a ..." -> "candy cane"), lower case, no leading
    determiner or quantity ("A pair of pliers." -> "pliers")."""
    name = _QUOTES.sub('', first_line.strip().lstrip('\ufeff'))
    name = _CLAUSE_END.split(name)[0].strip().lower()
    name = _VERB.split(name)[0]
    name = _QUANTITY.sub('', _DETERMINER.sub('', name))
    return re.sub(r'\s+', ' ', name).strip()


def stamp_group(rel_path: str) -> Optional[Tuple[str, str]]:
    """(fine category, super-category) of a stamp path relative to stamps/, or None if unused."""
    parts = rel_path.split('/')
    if parts[0] in SKIPPED_FOLDERS or 'cartoon' in parts:
        return None
    folder = '/'.join(parts[:-1])
    matches = [g for g in STAMP_GROUPS if folder == g[0] or folder.startswith(g[0] + '/')]
    return max(matches, key=lambda g: len(g[0]))[1:] if matches else None


@dataclass(frozen=True)
class Stamp:
    """One cut-out: ``path`` of its PNG, ``name`` (normalised English), ``fine`` and ``coarse``
    categories, and ``box`` (x0, y0, x1, y1) of its alpha mask in the PNG (it is cropped to it)."""
    path: str
    name: str
    fine: str
    coarse: str
    box: Tuple[int, int, int, int]

    @property
    def aspect(self) -> float:
        """Width over height of the cropped cut-out."""
        return (self.box[2] - self.box[0]) / (self.box[3] - self.box[1])


def read_stamp_rgba(path: str) -> np.ndarray:
    """The PNG as an (H, W, 4) uint8 RGBA array (palette transparency and LA converted)."""
    with Image.open(path) as image:
        return np.asarray(image.convert('RGBA'))


def mask_box(alpha: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """(x0, y0, x1, y1), end exclusive, of ``alpha >= MASK_THRESHOLD``; None if it is empty."""
    rows = np.flatnonzero((alpha >= MASK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((alpha >= MASK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def load_stamp_catalogue(stamps_dir: str = STAMPS_DIR) -> List[Stamp]:
    """Every usable cut-out under ``stamps_dir``, sorted by path.

    A PNG is used when a prefix of ``STAMP_GROUPS`` covers its folder, a ``.txt`` beside it names it
    (the ``*_mirror.png`` variants have none), it has an alpha channel (one photo is plain RGB) and
    its mask fills at least ``MIN_MASK_FRACTION`` of its box (soft glows such as fireworks do not).

    Raises:
        FileNotFoundError: ``stamps_dir`` holds no usable stamp.
    """
    stamps = []
    for path in sorted(glob.glob(osp.join(stamps_dir, '**', '*.png'), recursive=True)):
        rel = osp.relpath(path, stamps_dir)
        group = stamp_group(rel)
        txt = path[:-len('.png')] + '.txt'
        if group is None or not osp.isfile(txt):
            continue
        with Image.open(path) as image:
            if 'A' not in image.getbands() and 'transparency' not in image.info:
                continue
        alpha = read_stamp_rgba(path)[..., 3]
        box = mask_box(alpha)
        if box is None:
            continue
        crop = alpha[box[1]:box[3], box[0]:box[2]] >= MASK_THRESHOLD
        if crop.mean() < MIN_MASK_FRACTION:
            continue
        with open(txt, encoding='utf-8') as f:
            first_line = f.readline()
        name = NAME_OVERRIDES.get(rel[:-len('.png')], stamp_name(first_line))
        stamps.append(Stamp(path, name, group[0], group[1], box))
    if not stamps:
        raise FileNotFoundError(f'{stamps_dir}: no tuxpaint stamp cut-outs found; {INSTALL_HINT}')
    return stamps


def load_backgrounds(templates_dir: str = TEMPLATES_DIR) -> List[Image.Image]:
    """The template photos (JPEG), decoded, sorted by file name.

    Raises:
        FileNotFoundError: ``templates_dir`` holds no JPEG.
    """
    paths = sorted(glob.glob(osp.join(templates_dir, '*.jpg')))
    if not paths:
        raise FileNotFoundError(f'{templates_dir}: no tuxpaint template photos (*.jpg) found; '
                                f'{INSTALL_HINT}')
    backgrounds = []
    for path in paths:
        with Image.open(path) as image:
            backgrounds.append(image.convert('RGB'))
    return backgrounds


def background_crop(backgrounds: Sequence[Image.Image], size: int,
                    rng: np.random.Generator) -> np.ndarray:
    """A random square crop (side 50-100 % of the photo's shorter side) of a random template,
    resized to (size, size, 3) uint8."""
    photo = backgrounds[int(rng.integers(len(backgrounds)))]
    side = int(round(min(photo.size) * rng.uniform(0.5, 1.0)))
    left = int(rng.integers(photo.size[0] - side + 1))
    top = int(rng.integers(photo.size[1] - side + 1))
    crop = photo.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side))
    return np.asarray(crop)


@lru_cache(maxsize=None)
def _cropped_stamp(path: str, box: Tuple[int, int, int, int]) -> Image.Image:
    x0, y0, x1, y1 = box
    return Image.fromarray(read_stamp_rgba(path)[y0:y1, x0:x1]).convert('RGBa')


def stamp_layer(stamp: Stamp, width: int, height: int, flip: bool) -> np.ndarray:
    """The cut-out cropped to its mask box, mirrored if ``flip``, resized (bilinear) to
    (height, width): a (height, width, 4) float32 array, premultiplied RGB and alpha in [0, 1]."""
    image = _cropped_stamp(stamp.path, stamp.box)
    if flip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    image = image.resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


@dataclass(frozen=True)
class Placement:
    """Where one cut-out goes: top-left corner (may be off the canvas), size in pixels, mirroring,
    and the depth in metres of its fronto-parallel plane (ground-plane scenes only)."""
    stamp: Stamp
    left: int
    top: int
    width: int
    height: int
    flip: bool
    depth: Optional[float] = None


class SceneCanvas:
    """Paints cut-outs over a background in order, so later ones occlude earlier ones.

    ``instances`` is the (size, size) int32 map of the index of the placement that owns each pixel
    (-1: background); every label map, instance mask and depth map is read from it, so they all
    reflect the occlusion exactly. A placement is refused when its own visible mask, or what stays
    visible of an earlier one, would fall below ``min_visible`` pixels or ``min_keep`` of its mask.
    """

    def __init__(self, background: np.ndarray, min_visible: int, min_keep: float = 0.4):
        self.image = background.astype(np.float32) / 255.0
        self.size = background.shape[0]
        self.instances = np.full(background.shape[:2], -1, dtype=np.int32)
        self.placements: List[Placement] = []
        self.mask_areas: List[int] = []
        self.min_visible = min_visible
        self.min_keep = min_keep

    def _window(self, p: Placement):
        """Canvas slices and layer slices of the part of ``p`` on the canvas, or None."""
        x0, y0 = max(p.left, 0), max(p.top, 0)
        x1, y1 = min(p.left + p.width, self.size), min(p.top + p.height, self.size)
        if x0 >= x1 or y0 >= y1:
            return None
        return ((slice(y0, y1), slice(x0, x1)),
                (slice(y0 - p.top, y1 - p.top), slice(x0 - p.left, x1 - p.left)))

    def try_add(self, placement: Placement) -> bool:
        """Paint ``placement`` on top if the visibility limits allow it; return whether it was."""
        window = self._window(placement)
        if window is None:
            return False
        on_canvas, on_layer = window
        layer = stamp_layer(placement.stamp, placement.width, placement.height,
                            placement.flip)[on_layer]
        mask = layer[..., 3] >= MASK_THRESHOLD / 255.0
        area = int(mask.sum())
        if area < self.min_visible:
            return False
        covered = np.bincount(self.instances[on_canvas][mask] + 1,
                              minlength=len(self.placements) + 1)[1:]
        for index, lost in enumerate(covered):
            left = int((self.instances == index).sum()) - int(lost)
            if lost and (left < self.min_visible
                         or left < self.min_keep * self.mask_areas[index]):
                return False
        region = self.image[on_canvas]
        self.image[on_canvas] = region * (1.0 - layer[..., 3:]) + layer[..., :3]
        self.instances[on_canvas][mask] = len(self.placements)
        self.placements.append(placement)
        self.mask_areas.append(area)
        return True

    def rgb(self) -> np.ndarray:
        """The composited image, (size, size, 3) uint8."""
        return np.clip(np.rint(self.image * 255.0), 0, 255).astype(np.uint8)


def free_layout(stamps: Sequence[Stamp], size: int, rng: np.random.Generator,
                max_objects: int) -> Tuple[List[Placement], int]:
    """Candidate placements, in paint order, for a scene without geometry, and how many to keep:
    1 to ``max_objects`` cut-outs (each of a uniformly drawn fine category), the longer side 25-60 %
    of the image, up to a quarter of it off the canvas, mirrored with probability 1/2. Four
    candidates are drawn per object; :func:`compose` keeps the first that :class:`SceneCanvas`
    accepts (those that leave every object visible enough)."""
    by_fine = {}
    for stamp in stamps:
        by_fine.setdefault(stamp.fine, []).append(stamp)
    fines = sorted(by_fine)
    count = int(rng.integers(1, max_objects + 1))
    placements = []
    for _ in range(4 * count):
        group = by_fine[fines[int(rng.integers(len(fines)))]]
        stamp = group[int(rng.integers(len(group)))]
        longer = rng.uniform(0.25, 0.6) * size
        width = max(4, int(round(longer * min(1.0, stamp.aspect))))
        height = max(4, int(round(longer * min(1.0, 1.0 / stamp.aspect))))
        left = int(rng.integers(-width // 4, size - 3 * width // 4 + 1))
        top = int(rng.integers(-height // 4, size - 3 * height // 4 + 1))
        placements.append(Placement(stamp, left, top, width, height, bool(rng.random() < 0.5)))
    return placements, count


@dataclass(frozen=True)
class PinholeCamera:
    """A level pinhole camera ``height`` metres above a flat ground, focal length ``focal`` pixels,
    horizon (principal point row) ``horizon`` in pixels; ``far`` metres is the depth of the
    backdrop plane and the cap of the floor's depth."""
    focal: float
    horizon: float
    height: float = 1.5
    far: float = 10.0

    @classmethod
    def for_size(cls, size: int) -> 'PinholeCamera':
        """Focal length = image size (a 53 degree field of view), horizon through the centre."""
        return cls(focal=float(size), horizon=size / 2.0)

    def ground_row(self, depth: float) -> float:
        """Image row y of the ground line at ``depth`` metres: y = horizon + focal * height / Z."""
        return self.horizon + self.focal * self.height / depth

    def floor_depth(self, size: int) -> np.ndarray:
        """(size, size) float64 depth of the backdrop: the ground Z = focal * height / (y - horizon)
        at pixel-centre rows below the horizon, capped at ``far``, which is also the depth above."""
        rows = np.arange(size, dtype=np.float64) + 0.5 - self.horizon
        with np.errstate(divide='ignore'):
            depth = np.where(rows > 0, self.focal * self.height / np.maximum(rows, 1e-9), self.far)
        return np.repeat(np.minimum(depth, self.far)[:, None], size, axis=1)


def ground_layout(stamps: Sequence[Stamp], size: int, rng: np.random.Generator,
                  camera: PinholeCamera, max_objects: int) -> Tuple[List[Placement], int]:
    """Candidate placements of 1 to ``max_objects`` cut-outs standing on the ground, in paint order
    far to near (so near ones occlude far ones), and their number (all are tried): depth Z uniform
    in [focal * height / (0.95 * (size - horizon)), 0.6 * far] (the nearest base 95 % down the
    image), real height 0.6-2 m, image height focal * height_m / Z, the bottom of the mask
    on the ground line at Z, the column of its centre anywhere in the image."""
    near = camera.focal * camera.height / (0.95 * (size - camera.horizon))
    count = int(rng.integers(1, max_objects + 1))
    placements = []
    for _ in range(count):
        stamp = stamps[int(rng.integers(len(stamps)))]
        depth = round(float(rng.uniform(near, 0.6 * camera.far)), 3)
        height = max(4, int(round(camera.focal * rng.uniform(0.6, 2.0) / depth)))
        width = max(4, int(round(height * stamp.aspect)))
        bottom = int(round(camera.ground_row(depth)))
        left = int(round(rng.uniform(0, size) - width / 2))
        placements.append(Placement(stamp, left, bottom - height, width, height,
                                    bool(rng.random() < 0.5), depth))
    return sorted(placements, key=lambda p: -p.depth), count


def compose(background: np.ndarray, candidates: Sequence[Placement], keep: int,
            min_visible: int) -> SceneCanvas:
    """Paint ``candidates`` in order on ``background`` until ``keep`` of them are accepted."""
    canvas = SceneCanvas(background, min_visible)
    for placement in candidates:
        if len(canvas.placements) == keep:
            break
        canvas.try_add(placement)
    return canvas

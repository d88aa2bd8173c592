"""Fashion-MNIST read from local idx files (Debian's ``dataset-fashion-mnist`` by default).

mmpretrain has a ``FashionMNIST`` too, but it downloads on first use; this one never touches the
network. It reads the idx files itself (gzip'ed or raw) and checks them, so a damaged or missing
file fails at construction with a one-line message that names it.
"""
import gzip
import math
import os.path as osp
import zlib
from typing import List

import numpy as np
from mmpretrain.datasets.base_dataset import BaseDataset

from genrep.registry import DATASETS

IMAGES_MAGIC = 2051  # idx header 0x00000803: unsigned bytes, 3 dimensions (N, H, W)
LABELS_MAGIC = 2049  # idx header 0x00000801: unsigned bytes, 1 dimension (N,)

INSTALL_HINT = ('install it with `apt-get install dataset-fashion-mnist`, or set data_root to a '
                'directory holding the Fashion-MNIST idx files')


def read_idx_file(path: str, magic: int) -> np.ndarray:
    """Read an idx file of unsigned bytes, gzip'ed (``*.gz``) or raw.

    The header is a big-endian int32 magic number whose low byte is the number of dimensions, then
    one big-endian int32 per dimension; the data follows as uint8 in C order.

    Args:
        path (str): The file.
        magic (int): The expected magic number, ``IMAGES_MAGIC`` or ``LABELS_MAGIC``.

    Returns:
        np.ndarray: A read-only uint8 array of the declared shape, viewing the bytes read.
    """
    try:
        if path.endswith('.gz'):
            with gzip.open(path, 'rb') as f:
                raw = f.read()
        else:
            with open(path, 'rb') as f:
                raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(f'{path}: damaged or truncated gzip stream ({e})') from e

    ndim = magic & 0xFF
    header_len = 4 * (1 + ndim)
    if len(raw) < header_len:
        raise ValueError(f'{path}: truncated idx file, {len(raw)} bytes is shorter than the '
                         f'{header_len}-byte header')
    header = np.frombuffer(raw, dtype='>u4', count=1 + ndim)
    if int(header[0]) != magic:
        raise ValueError(f'{path}: bad idx magic number {int(header[0])}, expected {magic}')
    shape = tuple(int(d) for d in header[1:])
    expected = math.prod(shape)
    found = len(raw) - header_len
    if found != expected:
        what = 'truncated' if found < expected else 'oversized'
        raise ValueError(f'{path}: {what} idx file, header declares shape {shape} = {expected} '
                         f'data bytes, found {found}')
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


@DATASETS.register_module()
class FashionMNIST(BaseDataset):
    """Fashion-MNIST from local idx files, as an mmpretrain classification dataset.

    Each sample is ``dict(img=uint8 array [H, W], gt_label=int)``. The image stays 2-D, as in
    mmpretrain's own MNIST: cv2-based transforms (mmcv ``Pad``, ``Resize``) drop a trailing channel
    of size 1 anyway, and ``PackInputs`` turns [H, W] into a [1, H, W] tensor.

    Args:
        data_root (str): Directory holding ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.
            Defaults to Debian's ``/usr/share/datasets/fashion-mnist``.
        split (str): ``'train'`` (60,000 images) or ``'test'`` (10,000). Defaults to ``'train'``.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset`` (``pipeline``, ``indices``,
            ``test_mode``, ``metainfo``, ``serialize_data``, ``lazy_init`` ...).
    """

    METAINFO = {
        'classes': ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                    'Sneaker', 'Bag', 'Ankle boot')
    }
    SPLIT_PREFIXES = {'train': 'train', 'test': 't10k'}
    IMAGE_SIZE = (28, 28)  # (H, W) of every image: what a user's image is fitted into at inference

    def __init__(self,
                 data_root: str = '/usr/share/datasets/fashion-mnist',
                 split: str = 'train',
                 **kwargs):
        if split not in self.SPLIT_PREFIXES:
            raise ValueError(f"FashionMNIST split must be 'train' or 'test', got {split!r}")
        self.split = split
        super().__init__(
            ann_file='',
            data_root=osp.expanduser(data_root),
            data_prefix=dict(),
            **kwargs)

    def _find_file(self, stem: str) -> str:
        """The raw ``<stem>`` if present (already unpacked), else ``<stem>.gz``."""
        root = self.data_root
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'Fashion-MNIST directory {root} does not exist: {INSTALL_HINT}')
        for name in (stem, stem + '.gz'):
            path = osp.join(root, name)
            if osp.isfile(path):
                return path
        raise FileNotFoundError(
            f'Fashion-MNIST file {stem}.gz (or {stem}) not found in {root}: {INSTALL_HINT}')

    def load_data_list(self) -> List[dict]:
        """Read and check the split's images and labels; one dict a sample.

        The images are read once into one uint8 array; each sample's ``img`` is a view of it, which
        ``serialize_data`` pickles (and ``get_data_info`` copies) as its own small array.
        """
        prefix = self.SPLIT_PREFIXES[self.split]
        images_path = self._find_file(f'{prefix}-images-idx3-ubyte')
        labels_path = self._find_file(f'{prefix}-labels-idx1-ubyte')
        try:
            images = read_idx_file(images_path, IMAGES_MAGIC)
            labels = read_idx_file(labels_path, LABELS_MAGIC)
        except (OSError, ValueError) as err:  # the message names the file; add the dataset
            raise type(err)(f'FashionMNIST {self.split} split: {err}') from err

        if len(images) != len(labels):
            raise ValueError(f'{images_path} holds {len(images)} images but {labels_path} holds '
                             f'{len(labels)} labels')
        num_classes = len(self.METAINFO['classes'])
        bad = np.flatnonzero(labels >= num_classes)
        if bad.size:
            raise ValueError(f'{labels_path}: label {int(labels[bad[0]])} at index {int(bad[0])} '
                             f'is outside [0, {num_classes}) ({bad.size} such labels)')

        return [
            dict(img=images[i], gt_label=label) for i, label in enumerate(labels.tolist())
        ]

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)`` by mmpretrain's ``BaseDataset``."""
        return [f'Split: \t{self.split}', f'Data root: \t{self.data_root}']

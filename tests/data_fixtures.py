"""Small datasets written in their real on-disk formats, shared by the tests."""
import gzip

import numpy as np


def idx_bytes(array, magic):
    """The idx encoding: big-endian int32 magic, one big-endian int32 per dimension, uint8 data."""
    header = np.array([magic, *array.shape], dtype='>u4').tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path, array, magic):
    """Write ``array`` as an idx file at ``path``, gzip'ed when the name ends with ``.gz``."""
    payload = idx_bytes(array, magic)
    if str(path).endswith('.gz'):
        payload = gzip.compress(payload)
    with open(path, 'wb') as f:
        f.write(payload)


def write_fashion_mnist(root, num_train=8, num_test=8, seed=0, suffix='.gz'):
    """A random Fashion-MNIST lookalike (28x28 uint8 images, labels 0-9) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (('train', num_train), ('t10k', num_test)):
        write_idx(root / f'{prefix}-images-idx3-ubyte{suffix}',
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), 2051)
        write_idx(root / f'{prefix}-labels-idx1-ubyte{suffix}',
                  rng.integers(0, 10, n, dtype=np.uint8), 2049)
    return root

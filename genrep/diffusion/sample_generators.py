"""Random draws that belong to the sample, not to the batch it sits in.

One ``torch.Generator`` draws a batch's noise in batch order, so an image's noise depends on its
position and on the images before it: 2 processes x batch B draw other numbers than 1 process x
batch 2B, and the two runs differ by more than the order of floating-point sums. A
:class:`SampleGenerators` holds one generator per sample, each seeded from a key (e.g. the run's
seed, the training iteration, the dataset index of the sample and a stream id), so a sample's
draws are the same whichever process and batch position it lands on.

:func:`draw_normal` is where the diffusion layer draws noise: it takes either kind of generator
(``None``: torch's global one), so the reverse chain and the posterior estimators read both.
"""
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor


def key_seed(key: Sequence[int]) -> int:
    """A 63-bit seed from a key of non-negative ints (numpy's ``SeedSequence`` hash: nearby keys,
    e.g. consecutive iterations or sample indices, give unrelated seeds)."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


class SampleGenerators:
    """One ``torch.Generator`` a sample: draws of shape [N, ...] take row i from generator i.

    Args:
        seeds: N seeds, one per sample (see :meth:`keyed`).
        device: where the generators and their draws live.
    """

    def __init__(self, seeds: Sequence[int], device: Union[str, torch.device] = 'cpu'):
        self.device = torch.device(device)
        self.seeds = [int(seed) for seed in seeds]
        self.generators = [torch.Generator(device=self.device).manual_seed(seed)
                           for seed in self.seeds]

    @classmethod
    def keyed(cls, keys: Sequence[Sequence[int]], device: Union[str, torch.device] = 'cpu'):
        """Generators seeded by ``key_seed`` of each sample's key (a tuple of ints)."""
        return cls([key_seed(key) for key in keys], device)

    def __len__(self) -> int:
        return len(self.generators)

    def first(self, n: int) -> 'SampleGenerators':
        """The generators of the first ``n`` samples (fresh copies at their seeds)."""
        return SampleGenerators(self.seeds[:n], self.device)

    def select(self, rows: Sequence[int]) -> 'SampleGenerators':
        """The generators of the samples ``rows`` (fresh copies at their seeds)."""
        return SampleGenerators([self.seeds[row] for row in rows], self.device)

    def _check(self, shape: Sequence[int]) -> None:
        if len(shape) == 0 or shape[0] != len(self):
            raise ValueError(f'SampleGenerators: a draw of shape {tuple(shape)} must have one row '
                             f'per sample, {len(self)}')

    def randn(self, shape: Sequence[int], dtype: Optional[torch.dtype] = None) -> Tensor:
        """Standard normal [N, ...]: row i from generator i."""
        self._check(shape)
        return torch.stack([
            torch.randn(tuple(shape[1:]), generator=g, device=self.device, dtype=dtype)
            for g in self.generators
        ])

    def rand(self) -> Tensor:
        """[N] uniform on [0, 1), one per sample."""
        return torch.cat([torch.rand(1, generator=g, device=self.device)
                          for g in self.generators])

    def randint(self, high: int) -> Tensor:
        """[N] integers in [0, high), one per sample."""
        return torch.cat([torch.randint(high, (1, ), generator=g, device=self.device)
                          for g in self.generators])


Generator = Union[torch.Generator, SampleGenerators, None]


def draw_normal(shape: Sequence[int], generator: Generator, device: torch.device,
                dtype: Optional[torch.dtype] = None) -> Tensor:
    """``torch.randn(shape)`` from a ``torch.Generator`` (or torch's global one for ``None``), or
    row by row from :class:`SampleGenerators` (``shape[0]`` = its number of samples)."""
    if isinstance(generator, SampleGenerators):
        return generator.randn(shape, dtype).to(device)
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)

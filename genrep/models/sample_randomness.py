"""The random draws of a GenRep training step, keyed by the sample (data parallelism).

A training step draws random numbers in two places: the teacher's reverse chain (Eq. 2, the
noise of L_gen_distil) and the generation loss (Eq. 10: label dropout, the timestep, the noise).
Drawn from one generator in batch order, they depend on how the global batch is split across
processes, and 2 processes x batch B would not train the weights 1 process x batch 2B does. Here
each sample gets its own generator (:class:`~genrep.diffusion.sample_generators.SampleGenerators`)
seeded from the key

    (run seed, training iteration, sample key, stream)

* run seed and iteration: mmengine's ``MessageHub`` info ``seed`` (``RuntimeInfoHook``, before the
  run: ``randomness.seed`` of the config, or the seed rank 0 drew and broadcast) and ``iter``
  (before each training iteration); the same in every process, and restored by ``--resume``;
* sample key: the data sample's metainfo ``sample_idx``, the dataset index that mmengine's
  ``BaseDataset`` gives every sample and mmpretrain's ``PackInputs`` keeps (other packers keep it
  when ``'sample_idx'`` is in their ``meta_keys``);
* stream: which draw (:data:`TEACHER_STREAM`, :data:`GENERATION_STREAM`), so that they are
  independent.

Outside a runner (no ``iter`` in the message hub, e.g. a test calling ``model.loss``) the run
seed and iteration are replaced by one number drawn from torch's global generator per call
(reproducible under ``torch.manual_seed``, new each call); a sample without ``sample_idx`` is keyed
by its position in the batch (deterministic, but then the batch split matters again).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MessageHub

from genrep.diffusion.sample_generators import SampleGenerators

TEACHER_STREAM = 0
GENERATION_STREAM = 1


def step_key() -> Tuple[int, int]:
    """(run seed, training iteration) from the message hub, or (a number from torch's global
    generator, 0) outside a runner."""
    hub = MessageHub.get_current_instance()
    seed, iteration = hub.get_info('seed'), hub.get_info('iter')
    if seed is None or iteration is None:
        return int(torch.randint(2**62, ()).item()), 0
    return int(seed) % 2**63, int(iteration)


def sample_keys(data_samples: Optional[Sequence], batch: int) -> List[int]:
    """Each sample's ``sample_idx`` (metainfo), or the batch positions 0..B-1 when any lacks
    one."""
    keys = [getattr(sample, 'metainfo', {}).get('sample_idx') for sample in data_samples or ()]
    if len(keys) != batch or any(key is None for key in keys):
        return list(range(batch))
    return [int(key) for key in keys]


def sample_generators(data_samples: Optional[Sequence], batch: int, stream: int,
                      device: torch.device) -> SampleGenerators:
    """One generator a sample of the batch, keyed (run seed, iteration, sample key, stream)."""
    seed, iteration = step_key()
    return SampleGenerators.keyed(
        [(seed, iteration, key, stream) for key in sample_keys(data_samples, batch)], device)

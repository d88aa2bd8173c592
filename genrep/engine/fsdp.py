"""Sharded training (FSDP) through mmengine's FlexibleRunner and FSDPStrategy.

A config selects it with ``runner_type = 'FlexibleRunner'`` and ``strategy =
dict(type='FSDPStrategy', ...)`` (configs/genrep/imagenet256_dit_fsdp.py); tools/train.py then
builds the runner from the registry. This module registers what such a config names:

* ``genrep.size_based_auto_wrap_policy``: torch's size-based policy, so that
  ``strategy.model_wrapper.auto_wrap_policy = dict(type='genrep.size_based_auto_wrap_policy',
  min_num_params=...)`` shards the denoiser block by block (mmengine registers no policy itself).

Only the plain optimizer wrappers work under FSDP: ``GradientAlignOptimWrapper`` refuses a
sharded model, because Eq. 15 needs the cosine of the two whole task gradients and each process
holds a shard of them (genrep/engine/optim_wrappers.py). So FSDP serves the stages whose loss is
one tensor: stage 0 (generation) and stage 1 (perception).
"""
from torch.distributed.fsdp.wrap import size_based_auto_wrap_policy

from genrep.registry import FUNCTIONS

FUNCTIONS.register_module(name='size_based_auto_wrap_policy', module=size_based_auto_wrap_policy)

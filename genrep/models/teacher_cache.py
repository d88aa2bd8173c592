"""A per-image cache of the teacher's log-likelihoods (issue 13's cost lever).

The teacher of Eq. 2-3 costs denoiser evaluations for every distilled image at every step. Over
several epochs an image comes back, and a teacher estimated a few hundred iterations ago is still
a teacher (the denoiser changes slowly, and the semantic EMA copy more slowly still). The cache keeps,
per training image (its dataset index, metainfo ``sample_idx``), the normalised log p(x|y) of the
classes the teacher covered and the iteration it was estimated at; a later step whose candidates
are among those classes, within ``max_age`` iterations, applies Bayes (Eq. 3) to the stored values
instead of estimating again. The posterior over the candidates is then exactly the one the teacher
gave at its estimate (Bayes over a subset of classes only renormalises).

Image-level teachers only (dense and region maps would cost memory per pixel). The cache lives in
memory, per process: it is not saved with checkpoints (a resumed run starts it empty), and under
data parallelism an image that the sampler sends to another process is estimated there again.
"""
from collections import OrderedDict
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from genrep.diffusion.posteriors import bayes_posterior
from genrep.diffusion.sample_generators import SampleGenerators


class TeacherCache:
    """Teacher log-likelihoods by image key, fresh for ``max_age`` iterations.

    Args:
        max_age: iterations an estimate is reused for (an entry of iteration i serves the
            iterations i .. i + max_age); 0 reuses an estimate only within its own iteration.
        max_entries: the most images kept; the least recently stored go first. ``None``: no bound
            (about (8 + 12 K) bytes an image, K the classes covered).
    """

    def __init__(self, max_age: int, max_entries: Optional[int] = None):
        if max_age < 0:
            raise ValueError(f'TeacherCache: max_age must be >= 0, got {max_age}')
        if max_entries is not None and max_entries < 1:
            raise ValueError(f'TeacherCache: max_entries must be >= 1 or None, got {max_entries}')
        self.max_age = max_age
        self.max_entries = max_entries
        self._entries: 'OrderedDict[int, Tuple[int, Tensor, Tensor]]' = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, keys: Sequence[int], candidates: Tensor,
               iteration: int) -> Tuple[Tensor, Tensor]:
        """The stored log-likelihoods of ``candidates`` [n, K] for the images ``keys``.

        Returns:
            (hit [n] bool, log-likelihood [n, K]); rows without a hit (no entry, older than
            ``max_age``, or a candidate the entry does not cover) are NaN.
        """
        n, k = candidates.shape
        hit = torch.zeros(n, dtype=torch.bool)
        values = torch.full((n, k), float('nan'))
        for row, key in enumerate(keys):
            entry = self._entries.get(int(key))
            if entry is None or iteration - entry[0] > self.max_age or iteration < entry[0]:
                continue
            classes, log_lik = entry[1], entry[2]
            match = candidates[row].cpu()[:, None] == classes[None]
            if bool(match.any(1).all()):
                hit[row] = True
                values[row] = log_lik[match.float().argmax(1)]
        self.hits += int(hit.sum())
        self.misses += n - int(hit.sum())
        return hit.to(candidates.device), values.to(candidates.device)

    def store(self, keys: Sequence[int], candidates: Tensor, log_likelihood: Tensor,
              iteration: int) -> None:
        """Keep each image's estimate ``log_likelihood`` [n, K] of its ``candidates`` [n, K],
        replacing what the image had (estimates of separate calls use separate noise, so they are
        not merged)."""
        candidates, log_likelihood = candidates.detach().cpu(), log_likelihood.detach().float().cpu()
        for row, key in enumerate(keys):
            key = int(key)
            self._entries.pop(key, None)
            self._entries[key] = (iteration, candidates[row].clone(), log_likelihood[row].clone())
        while self.max_entries is not None and len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def cached_posterior(posterior, denoiser, latents: Tensor, candidates: Tensor,
                     cache: TeacherCache, keys: Sequence[int], iteration: int,
                     generator=None, **estimator_kwargs) -> Tensor:
    """The teacher p(y|x) over ``candidates`` [n, K] (Eq. 3) through ``cache``: the images with a
    fresh entry covering their candidates take Bayes of the stored log-likelihoods, the others are
    estimated now (``posterior.log_likelihood``, with their own sample generators when
    ``generator`` is a ``SampleGenerators``) and stored. Returns [n, K]."""
    hit, log_lik = cache.lookup(keys, candidates, iteration)
    miss = (~hit).nonzero().flatten()
    if len(miss):
        rows = miss.tolist()
        if isinstance(generator, SampleGenerators):
            generator = generator.select(rows)
        fresh = posterior.log_likelihood(denoiser, latents[miss], candidates[miss], generator,
                                         **estimator_kwargs)
        cache.store([keys[i] for i in rows], candidates[miss], fresh, iteration)
        log_lik = log_lik.index_put((miss, ), fresh.to(log_lik.dtype))
    return bayes_posterior(log_lik, posterior.temperature)

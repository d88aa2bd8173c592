"""Per-sample generators: an image's draws do not depend on the batch it is in."""
import torch

from genrep.diffusion import ReverseChainPosterior, SampleGenerators, key_seed
from genrep.diffusion.reverse_chain import reverse_chain


def test_rows_follow_their_keys_not_their_batch():
    keys = [(0, 3, idx, 1) for idx in (7, 2, 9, 4)]
    whole = SampleGenerators.keyed(keys)
    halves = [SampleGenerators.keyed(keys[0::2]), SampleGenerators.keyed(keys[1::2])]
    draws = [whole.rand(), whole.randint(10), whole.randn((4, 2, 3))]
    parts = [[g.rand(), g.randint(10), g.randn((2, 2, 3))] for g in halves]
    for index, drawn in enumerate(draws):
        torch.testing.assert_close(drawn[0::2], parts[0][index], rtol=0, atol=0)
        torch.testing.assert_close(drawn[1::2], parts[1][index], rtol=0, atol=0)
    assert len({key_seed(k) for k in keys + [(0, 4, 7, 1), (0, 3, 7, 0)]}) == 6


def test_reverse_chain_noise_is_per_image():
    schedule = ReverseChainPosterior(
        dict(type='DiffusionSchedule', num_inference_steps=3), burn_in=0, thinning=1).schedule

    def denoiser(x_t, t, labels):  # a class-dependent eps, no weights
        return 0.1 * x_t + labels.float().view(-1, *([1] * (x_t.dim() - 1))) * 0.01

    x0 = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    classes = torch.tensor([[0, 1], [1, 2], [2, 0]])
    keys = [(5, 0, idx, 0) for idx in (10, 11, 12)]
    steps = list(reverse_chain(schedule, denoiser, x0, classes, 0, 1,
                               SampleGenerators.keyed(keys)))
    alone = list(reverse_chain(schedule, denoiser, x0[1:2], classes[1:2], 0, 1,
                               SampleGenerators.keyed(keys[1:2])))
    assert len(steps) == len(alone) == 3
    for step, single in zip(steps, alone):
        torch.testing.assert_close(step.mean[1:2], single.mean, rtol=0, atol=0)
        torch.testing.assert_close(step.sample[1:2], single.sample, rtol=0, atol=0)

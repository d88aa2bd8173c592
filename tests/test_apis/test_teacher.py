import torch
import torch.nn.functional as F

from genrep.apis.teacher import mean_kl


def test_mean_kl_matches_torch_kl_div_and_handles_zero_mass():
    generator = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(6, 5, generator=generator) * 3, dim=1)
    q = torch.softmax(torch.randn(6, 5, generator=generator), dim=1)
    expected = F.kl_div(q.log(), p, reduction='batchmean').item()
    assert abs(mean_kl(p, q) - expected) < 1e-6
    assert mean_kl(p, p) == 0.0
    # A class that p gives no mass adds nothing, whatever q gives it.
    p0 = torch.tensor([[1.0, 0.0]])
    assert abs(mean_kl(p0, torch.tensor([[0.5, 0.5]])) - torch.log(torch.tensor(2.0)).item()) < 1e-6

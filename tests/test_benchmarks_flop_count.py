"""benchmarks/flop_count.py (what benchmarks/paper_cost.py counts with) against hand counts: a
convolution and an attention block, forward and backward, on CPU and on the meta device.

Hand counts, 2 FLOPs a multiply-add, no bias:
* Conv2d(C_in -> C_out, k x k) on [B, C_in, H, W], 'same' padding: forward 2 B C_out H W C_in k^2;
  the backward computes the input gradient and the weight gradient, each as costly as the forward.
* attention over [B, L, D] with H heads of d = D / H: the four D x D projections, 4 x 2 B L D^2,
  and the two batched matmuls of attention, Q K^T and A V, 2 x 2 B H L^2 d; the backward of a
  linear layer is twice its forward (input and weight gradients). That of attention depends on the
  kernel: on the meta device SDPA decomposes into its two matmuls, whose backward is twice their
  forward (gradients of both operands of each); on CPU it is the flash kernel, whose backward
  also recomputes Q K^T, 2.5 times the forward (torch's sdpa_backward_flop_count, as on a GPU)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.flop_count import SavedActivations, count_flops, forward_backward_flops


class AttentionBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim, bias=False) for _ in range(4))

    def forward(self, x):
        b, length, dim = x.shape

        def split(t):
            return t.view(b, length, self.heads, dim // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)),
                                                  split(self.v(x)))
        return self.out(attended.transpose(1, 2).reshape(b, length, dim))


@pytest.mark.parametrize('device', ['cpu', 'meta'])
def test_conv_forward_and_backward_against_hand_count(device):
    b, c_in, c_out, side, k = 2, 3, 8, 16, 3
    with torch.device(device):
        conv = nn.Conv2d(c_in, c_out, k, padding=1, bias=False)
        x = torch.randn(b, c_in, side, side, requires_grad=True)
    fwd, bwd, saved = forward_backward_flops(lambda: conv(x).sum(), conv.parameters())
    hand = 2 * b * c_out * side * side * c_in * k * k
    assert fwd == hand
    assert bwd == 2 * hand
    # the convolution saves its input (the weight is a parameter); sum's backward saves nothing
    assert saved == x.numel() * 4


@pytest.mark.parametrize('device,backward_factor', [('cpu', 2.5), ('meta', 2)])
def test_attention_block_against_hand_count(device, backward_factor):
    b, length, dim, heads = 2, 64, 32, 4
    with torch.device(device):
        block = AttentionBlock(dim, heads)
        x = torch.randn(b, length, dim, requires_grad=True)
    fwd, bwd, _ = forward_backward_flops(lambda: block(x).sum(), block.parameters())
    projections = 4 * 2 * b * length * dim * dim
    attention = 2 * 2 * b * heads * length * length * (dim // heads)
    assert fwd == projections + attention
    assert bwd == 2 * projections + backward_factor * attention


def test_frozen_weights_cost_only_the_input_gradient():
    """A frozen layer whose input needs a gradient: the backward computes the input gradient
    alone, the forward's cost once (what a partly trainable denoiser's backward is made of)."""
    layer = nn.Linear(16, 16, bias=False).requires_grad_(False)
    x = torch.randn(4, 16, requires_grad=True)
    fwd, bwd, _ = forward_backward_flops(lambda: layer(x).sum())
    assert fwd == 2 * 4 * 16 * 16 and bwd == fwd


def test_no_grad_forward_saves_nothing_and_counts_the_forward():
    layer = nn.Linear(8, 8, bias=False)
    x = torch.randn(5, 8)
    with SavedActivations() as saved, torch.no_grad():
        flops, _ = count_flops(layer, x)
    assert flops == 2 * 5 * 8 * 8 and saved.bytes == 0

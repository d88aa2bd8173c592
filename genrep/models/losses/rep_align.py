"""Representation alignment (L_rep.align of Eq. 10; REPA, Yu et al. 2024).

As in REPA, a projector MLP (Linear-SiLU-Linear-SiLU-Linear, applied to each token, its Linear
layers Xavier-uniform initialised with zero biases) maps the denoiser's intermediate features h to
the dimension of the target representation, and the loss is the negative cosine similarity between
each projected token and the target token at the same place, averaged over tokens and over the
batch. The target (x_sem) is a fixed teacher: it receives no gradient.

Token grids. Features h [B, C, h, w] and target x_sem [B, D, h', w'] may sit on different grids. The
projector runs on the feature grid (one MLP call per feature token), and the projected map is then
resized bilinearly to the target's grid, so every target token is used exactly as given (the mmseg
habit: resize the prediction to the target, never the target). REPA itself picks the image sizes
so that both grids agree; then no resizing happens.
"""
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from genrep.registry import MODELS

REDUCTIONS = ('mean', 'sum', 'none')


def projector_mlp(in_channels: int, hidden_channels: int, out_channels: int) -> nn.Sequential:
    """REPA's projector: Linear-SiLU-Linear-SiLU-Linear on tokens [..., in] -> [..., out], Linear
    weights Xavier-uniform, biases zero (REPA initialises it with the rest of SiT that way)."""
    mlp = nn.Sequential(
        nn.Linear(in_channels, hidden_channels), nn.SiLU(),
        nn.Linear(hidden_channels, hidden_channels), nn.SiLU(),
        nn.Linear(hidden_channels, out_channels))
    for layer in mlp:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return mlp


def representation_alignment_loss(projected: Tensor, target: Tensor) -> Tensor:
    """L_rep.align of Eq. 10 per token: -cos(projected, target) along channels.

    Args:
        projected: projected denoiser features, [B, D, h, w].
        target: the target representation x_sem on the same grid, [B, D, h, w]; detached here.

    Returns:
        [B, h, w], each in [-1, 1]: -1 where a token points the same way as its target.
    """
    if projected.shape != target.shape:
        raise ValueError(f'representation_alignment_loss: projected features '
                         f'{tuple(projected.shape)} and target {tuple(target.shape)} differ')
    projected = F.normalize(projected.float(), dim=1)
    target = F.normalize(target.detach().float(), dim=1)
    return -(projected * target).sum(dim=1)


@MODELS.register_module()
class RepAlignLoss(nn.Module):
    """L_rep.align of Eq. 10: aligns projected denoiser features with the target representation.

    The projector is a submodule of this loss, so the model owning the loss must also hand its
    parameters to the optimizer (it does when the loss is an attribute of that model).

    Args:
        in_channels: C, channels of the denoiser features h.
        target_channels: D, channels of the target x_sem.
        hidden_channels: width of the projector's hidden layers (REPA: 2048).
        loss_weight: multiplies the loss (the paper's Eq. 10 adds it unweighted; REPA uses 0.5).
        reduction: 'mean' (over tokens and batch), 'sum', or 'none' (per token [B, h', w']).
    """

    def __init__(self,
                 in_channels: int,
                 target_channels: int,
                 hidden_channels: int = 2048,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean'):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f'RepAlignLoss: reduction={reduction!r}, expected one of {REDUCTIONS}')
        self.in_channels = in_channels
        self.target_channels = target_channels
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.projector = projector_mlp(in_channels, hidden_channels, target_channels)

    def project(self, features: Tensor) -> Tensor:
        """Projector on each token: h [B, C, h, w] -> [B, D, h, w]."""
        if features.dim() != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f'RepAlignLoss: features must be [B, {self.in_channels}, h, w], got '
                             f'{tuple(features.shape)}')
        tokens = features.permute(0, 2, 3, 1)
        return self.projector(tokens).permute(0, 3, 1, 2)

    def forward(self, features: Tensor, target: Tensor) -> Tensor:
        """Negative cosine similarity of projected features [B, C, h, w] to target [B, D, h', w'],
        the projected map resized bilinearly to (h', w')."""
        if target.dim() != 4 or target.shape[1] != self.target_channels or (
                target.shape[0] != features.shape[0]):
            raise ValueError(f'RepAlignLoss: target must be [{features.shape[0]}, '
                             f'{self.target_channels}, h, w], got {tuple(target.shape)}')
        projected = self.project(features)
        if projected.shape[-2:] != target.shape[-2:]:
            projected = F.interpolate(
                projected, size=target.shape[-2:], mode='bilinear', align_corners=False)
        loss = representation_alignment_loss(projected, target)
        if self.reduction == 'mean':
            loss = loss.mean()
        elif self.reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}, reduction={self.reduction!r}'

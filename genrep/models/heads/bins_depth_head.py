"""A MaskFormer-like adaptive-bins depth head (BinsFormer, Li et al., 2024c; paper A.4).

Depth is classification-regression over adaptive bins: a set of queries, refined by a small
transformer decoder that attends to the backbone's coarsest feature, predicts the bin widths of each
image (so its bin centres) and one per-pixel embedding each; the per-pixel bin probabilities are the
softmax over queries of (query embedding . pixel embedding), and the depth at a pixel is the linear
combination of the bin centres with those probabilities (:func:`bins_depth`).

Kept small: one top-down pixel decoder (lateral 1x1 convs, nearest upsampling, a 3x3 conv) at the
finest input level, one decoder stack, no per-layer deep supervision or bin chamfer loss of the
original. The loss is mmseg's (``SiLogLoss`` by default) on the depth resized to the ground truth,
as mmseg's ``VPDDepthHead`` does; everything else of mmseg's ``DepthEstimator`` (inference,
flip, post-processing, ``DepthMetric``) is used as it is.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS as MMSEG_MODELS
from torch import Tensor, nn

from genrep.registry import MODELS


def bin_centres(widths: Tensor, min_depth: float, max_depth: float) -> Tensor:
    """Bin centres [B, K] of K bins covering [min_depth, max_depth] with relative ``widths`` [B, K]
    (positive, summing to 1 per image): the midpoints of min + (max - min) * cumsum(widths)."""
    edges = min_depth + (max_depth - min_depth) * F.pad(widths.cumsum(dim=1), (1, 0))
    return 0.5 * (edges[:, :-1] + edges[:, 1:])


def bins_depth(probs: Tensor, centres: Tensor) -> Tensor:
    """Depth [B, 1, H, W] as the linear combination of bin centres [B, K] with per-pixel bin
    probabilities [B, K, H, W] (summing to 1 over K)."""
    return torch.einsum('bkhw,bk->bhw', probs, centres)[:, None]


@MODELS.register_module()
class BinsDepthHead(BaseDecodeHead):
    """Adaptive-bins depth head over multi-scale features.

    Args:
        in_channels: channels of the input features, in increasing-stride order.
        channels: width of the pixel decoder, the queries and the transformer decoder.
        num_bins: K, the number of queries (bins).
        num_layers: transformer decoder layers (self-attention, cross-attention to the coarsest
            feature, feed-forward).
        num_heads: attention heads.
        min_depth, max_depth: the range the bins cover (metres).
        align_corners: of the resizes.
        loss_decode: an mmseg depth loss config (or a list of them).
        init_cfg: mmengine initialisation config.

    ``forward`` returns the depth [B, 1, h, w] at the finest input level's resolution.
    """
    num_classes = 1
    out_channels = 1
    input_transform = None

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 64,
                 num_bins: int = 64,
                 num_layers: int = 2,
                 num_heads: int = 4,
                 min_depth: float = 1e-3,
                 max_depth: float = 10.0,
                 align_corners: bool = False,
                 loss_decode=dict(type='SiLogLoss'),
                 init_cfg=None):
        # BaseDecodeHead's own __init__ builds a classifier conv this head has no use for.
        BaseModule.__init__(self, init_cfg=init_cfg)
        if not 0 < min_depth < max_depth:
            raise ValueError(f'BinsDepthHead: need 0 < min_depth < max_depth, got {min_depth}, '
                             f'{max_depth}')
        self.in_channels = list(in_channels)
        self.channels = channels
        self.num_bins = num_bins
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.align_corners = align_corners
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in self.in_channels)
        self.pixel_out = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 1))
        self.queries = nn.Embedding(num_bins, channels)
        self.memory_pos = nn.Conv2d(2, channels, 1)  # normalised (y, x) -> position embedding
        layer = nn.TransformerDecoderLayer(channels, num_heads, dim_feedforward=2 * channels,
                                           dropout=0.0, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, num_layers, norm=nn.LayerNorm(channels))
        self.width_mlp = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(),
                                       nn.Linear(channels, 1))
        self.embed_mlp = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(),
                                       nn.Linear(channels, channels))
        losses = loss_decode if isinstance(loss_decode, (list, tuple)) else [loss_decode]
        built = [MMSEG_MODELS.build(cfg) for cfg in losses]
        self.loss_decode = built[0] if isinstance(loss_decode, dict) else nn.ModuleList(built)

    def pixel_embeddings(self, feats: Sequence[Tensor]) -> Tensor:
        """Top-down sum of the laterals (coarsest first), at the finest level: [B, C, h, w]."""
        x = self.lateral[-1](feats[-1])
        for lateral, feat in zip(self.lateral[-2::-1], feats[-2::-1]):
            x = lateral(feat) + F.interpolate(x, size=feat.shape[-2:], mode='nearest')
        return self.pixel_out(x)

    def decode_queries(self, coarsest: Tensor) -> Tensor:
        """The K queries after the transformer decoder over the coarsest feature: [B, K, C]."""
        batch, _, height, width = coarsest.shape
        ys = torch.linspace(-1, 1, height, device=coarsest.device)
        xs = torch.linspace(-1, 1, width, device=coarsest.device)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing='ij'))[None].to(coarsest.dtype)
        memory = (self.lateral[-1](coarsest) + self.memory_pos(grid)).flatten(2).transpose(1, 2)
        queries = self.queries.weight[None].expand(batch, -1, -1)
        return self.decoder(queries, memory)

    def forward_bins(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Bin centres [B, K] and per-pixel bin probabilities [B, K, h, w]."""
        feats = list(inputs)
        if len(feats) != len(self.lateral):
            raise ValueError(f'BinsDepthHead: in_channels names {len(self.lateral)} inputs, got '
                             f'{len(feats)} features')
        pixels = self.pixel_embeddings(feats)
        queries = self.decode_queries(feats[-1])
        widths = self.width_mlp(queries)[..., 0].softmax(dim=1)
        centres = bin_centres(widths, self.min_depth, self.max_depth)
        logits = torch.einsum('bkc,bchw->bkhw', self.embed_mlp(queries), pixels)
        return centres, logits.softmax(dim=1)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        centres, probs = self.forward_bins(inputs)
        return bins_depth(probs, centres)

    def loss_by_feat(self, pred_depth_map: Tensor, batch_data_samples) -> dict:
        """mmseg's depth losses of the depth resized to the ground truth [B, 1, H, W]."""
        gt = torch.stack([s.gt_depth_map.data for s in batch_data_samples])
        pred = resize(pred_depth_map, size=gt.shape[2:], mode='bilinear',
                      align_corners=self.align_corners)
        losses = (self.loss_decode
                  if isinstance(self.loss_decode, nn.ModuleList) else [self.loss_decode])
        out: dict = {}
        for loss in losses:
            value = loss(pred, gt)
            out[loss.loss_name] = out[loss.loss_name] + value if loss.loss_name in out else value
        return out

"""Expected calibration error (ECE) of a classifier, and its reliability diagram.

The ECE is torchmetrics' top-label calibration error with the L1 norm:
``sum_b |acc_b - conf_b| * n_b / n`` over equal-width confidence bins ``[k/B, (k+1)/B)``
(torchmetrics counts a confidence of exactly 1.0 in a bin of its own).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub
from mmengine.visualization import Visualizer
from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error

from genrep.registry import METRICS


def reliability_bins(confidences: Tensor, correct: Tensor, n_bins: int) -> Dict[str, np.ndarray]:
    """Per-bin accuracy, mean confidence and count, for the reliability diagram.

    Bins are torchmetrics' (``[k/B, (k+1)/B)``); a confidence of exactly 1.0 is drawn in the last
    bin. Empty bins have accuracy and confidence 0.

    Args:
        confidences (Tensor): Top-1 probability of each sample, [N].
        correct (Tensor): Whether the top-1 class is the label, [N].
        n_bins (int): Number of bins B.

    Returns:
        dict: ``accuracy``, ``confidence`` and ``count``, each an array [B].
    """
    confidences = confidences.double()
    boundaries = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = (torch.bucketize(confidences, boundaries, right=True) - 1).clamp(0, n_bins - 1)
    count = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index,
                                                                torch.ones_like(confidences))
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, confidences)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct.double())
    safe_count = count.clamp(min=1)
    return dict(accuracy=(acc_sum / safe_count).numpy(), confidence=(conf_sum / safe_count).numpy(),
                count=count.numpy().astype(np.int64))


def plot_reliability_diagram(bins: Dict[str, np.ndarray], ece: float) -> np.ndarray:
    """The reliability diagram of ``bins`` (from ``reliability_bins``) as an RGB image [H, W, 3]
    uint8.

    Top: accuracy per bin (bars), the gap to the bin's mean confidence (hatched) and the diagonal
    of perfect calibration. Bottom: the share of samples per bin. Drawn on matplotlib's Agg canvas,
    without pyplot, so it touches no global backend state.
    """
    n_bins = len(bins['count'])
    edges = np.linspace(0, 1, n_bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1 / n_bins
    filled = bins['count'] > 0

    fig = Figure(figsize=(4.5, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw=dict(height_ratios=[3, 1]))
    top.bar(centers[filled], bins['accuracy'][filled], width=width, edgecolor='black',
            color='tab:blue', label='accuracy')
    gap = bins['confidence'] - bins['accuracy']
    top.bar(centers[filled], gap[filled], bottom=bins['accuracy'][filled], width=width,
            edgecolor='tab:red', color='tab:red', alpha=0.3, hatch='//', label='gap to confidence')
    top.plot([0, 1], [0, 1], linestyle='--', color='gray', label='perfect calibration')
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel='accuracy', title=f'ECE = {ece:.4f} ({n_bins} bins)')
    top.legend(loc='upper left', fontsize='small')
    bottom.bar(centers, bins['count'] / max(bins['count'].sum(), 1), width=width,
               edgecolor='black', color='gray')
    bottom.set(xlim=(0, 1), xlabel='confidence', ylabel='share of samples')
    fig.tight_layout()
    canvas = fig.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


@METRICS.register_module()
class ExpectedCalibrationError(BaseMetric):
    """Expected calibration error of mmpretrain predictions, optionally with a reliability diagram.

    Reads ``pred_score`` (class probabilities, [C]) and ``gt_label`` of mmpretrain ``DataSample``s,
    as mmpretrain's ``Accuracy`` does. Reports ``calibration/ece`` and
    ``calibration/confidence_gap``, the mean top-label confidence minus the accuracy (signed, in
    [-1, 1]: negative for an underconfident model, positive for an overconfident one; its absolute
    value is the ECE with one bin), which says which way a miscalibration goes.

    The reliability diagram goes to the current visualizer (the one a Runner makes from the
    config's ``visualizer``), as mmseg's and mmdet's visualisations do: with its
    ``LocalVisBackend`` it lands in the run's work dir, at
    ``<work_dir>/<timestamp>/vis_data/vis_image/reliability_diagram_<epoch>.png``; outside a
    runner (no visualizer) none is drawn. In a config::

        test_evaluator = [
            dict(type='Accuracy', topk=(1, )),
            dict(type='genrep.ExpectedCalibrationError', n_bins=15),
        ]

    Args:
        n_bins (int): Number of equal-width confidence bins. Defaults to 15.
        draw_diagram (bool): Whether to hand the reliability diagram to the visualizer. Defaults
            to True.
        collect_device (str): Device to collect results across ranks on. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to 'calibration'.
    """
    default_prefix = 'calibration'

    def __init__(self,
                 n_bins: int = 15,
                 draw_diagram: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if not isinstance(n_bins, int) or n_bins < 1:
            raise ValueError(f'n_bins must be a positive integer, got {n_bins!r}')
        self.n_bins = n_bins
        self.draw_diagram = draw_diagram

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for data_sample in data_samples:
            if 'pred_score' not in data_sample:
                raise KeyError('ExpectedCalibrationError needs class probabilities: the data '
                               "sample has no 'pred_score' (only a predicted label?)")
            self.results.append(
                dict(pred_score=data_sample['pred_score'].detach().cpu(),
                     gt_label=data_sample['gt_label'].detach().cpu().reshape(-1)[:1]))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        scores = torch.stack([r['pred_score'] for r in results]).float()
        labels = torch.cat([r['gt_label'] for r in results]).long()
        # The functional form: the metric runs on rank 0 alone, where a torchmetrics module's
        # sync on compute would wait for the other ranks.
        ece = float(multiclass_calibration_error(
            scores, labels, num_classes=scores.shape[1], n_bins=self.n_bins, norm='l1'))
        confidences, predictions = scores.max(dim=1)
        correct = predictions == labels
        gap = float(confidences.mean() - correct.float().mean())
        # A Runner creates the visualizer; a metric used on its own has none to draw to.
        if self.draw_diagram and Visualizer._instance_dict:
            bins = reliability_bins(confidences, correct, self.n_bins)
            epoch = MessageHub.get_current_instance().get_info('epoch', 0)
            Visualizer.get_current_instance().add_image(
                'reliability_diagram', plot_reliability_diagram(bins, ece), step=epoch)
        return dict(ece=ece, confidence_gap=gap)

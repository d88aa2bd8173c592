"""mIoU over named subsets of the classes (open-vocabulary segmentation: seen and unseen classes).

Zero-shot and open-vocabulary segmentation (ZS3Net, SPNet, ZegFormer) report the mean IoU of the
classes trained on and of those only named at test separately, since the mean over all classes
hides a model that never predicts an unseen class. This is mmseg's ``IoUMetric`` (same per-image
areas, same per-class IoU, same 'mIoU' over all classes) with one 'mIoU_<subset>' per subset: the
mean of the per-class IoU over the subset's classes, classes absent from both the labels and the
predictions left out as mmseg leaves them out of its mean.
"""
from typing import Dict, List, Sequence, Union

import numpy as np
from mmseg.evaluation import IoUMetric

from genrep.registry import METRICS


@METRICS.register_module()
class ClassSubsetIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` plus the mIoU of each class subset.

    Args:
        class_subsets: the subsets, as names of class lists in the dataset's metainfo (e.g.
            ``('seen', 'unseen')``, which ``genrep.ScenesSegDataset`` reads from its tree's
            classes.json), or as ``{subset name: [class names]}``.
        kwargs: ``IoUMetric``'s (``iou_metrics`` must include 'mIoU').
    """

    def __init__(self, class_subsets: Union[Sequence[str], Dict[str, Sequence[str]]], **kwargs):
        super().__init__(**kwargs)
        if 'mIoU' not in self.metrics:
            raise ValueError(f'ClassSubsetIoUMetric: iou_metrics={self.metrics} must include '
                             "'mIoU'")
        if isinstance(class_subsets, str) or not class_subsets:
            raise ValueError(f'ClassSubsetIoUMetric: class_subsets={class_subsets!r}: expected a '
                             'non-empty list of metainfo keys or a dict of class-name lists')
        self.class_subsets = class_subsets

    def subset_indices(self) -> Dict[str, List[int]]:
        """{subset name: indices of its classes in the dataset's ``classes``}."""
        classes = list(self.dataset_meta['classes'])
        if isinstance(self.class_subsets, dict):
            subsets = {name: list(names) for name, names in self.class_subsets.items()}
        else:
            missing = [key for key in self.class_subsets if key not in self.dataset_meta]
            if missing:
                raise ValueError(f'ClassSubsetIoUMetric: class_subsets {missing} are not in the '
                                 f'dataset metainfo (it has {sorted(self.dataset_meta)})')
            subsets = {key: list(self.dataset_meta[key]) for key in self.class_subsets}
        indices = {}
        for name, names in subsets.items():
            unknown = [n for n in names if n not in classes]
            if unknown:
                raise ValueError(f'ClassSubsetIoUMetric: class_subsets[{name!r}] names classes '
                                 f'the dataset does not have: {unknown}')
            indices[name] = [classes.index(n) for n in names]
        return indices

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """IoUMetric's metrics, then 'mIoU_<subset>' for each subset, rounded as mmseg rounds
        its mIoU (percent, two decimals)."""
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        intersect, union, pred_area, label_area = (sum(areas) for areas in zip(*results))
        iou = np.asarray(self.total_area_to_metrics(intersect, union, pred_area, label_area,
                                                    ['mIoU'], self.nan_to_num)['IoU'])
        for name, indices in self.subset_indices().items():
            values = iou[indices]
            mean = np.nanmean(values) if not np.isnan(values).all() else np.nan
            metrics[f'mIoU_{name}'] = np.round(mean * 100, 2)
        return metrics

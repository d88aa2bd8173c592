"""Independent computations of a test run's metrics from its own predictions: a hook records what
the test loop hands the evaluator, and these functions recompute mIoU, accuracy, depth errors and
COCO AP50 from it by hand (numpy) or with pycocotools, so that a job test compares the reported
figure with a reference instead of a range."""
import numpy as np
import torch
from mmengine.hooks import Hook


class PredictionRecorder(Hook):
    """Keeps every data sample the test loop predicts (``after_test_iter``'s outputs)."""
    priority = 'LOWEST'

    def __init__(self):
        self.samples = []

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.samples.extend(outputs)


def record_test_predictions(runner) -> PredictionRecorder:
    """Register a :class:`PredictionRecorder` on ``runner``; its ``samples`` fill on ``test()``."""
    recorder = PredictionRecorder()
    runner.register_hook(recorder)
    return recorder


def class_ious(samples, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Per-class IoU over all samples' ``pred_sem_seg`` against ``gt_sem_seg`` (pixels labelled
    ``ignore_index`` left out; NaN for a class absent from both), by counting pixels."""
    intersect, union = np.zeros(num_classes), np.zeros(num_classes)
    for sample in samples:
        pred = sample.pred_sem_seg.data.squeeze().cpu().numpy()
        gt = sample.gt_sem_seg.data.squeeze().cpu().numpy()
        valid = gt != ignore_index
        for c in range(num_classes):
            p, g = (pred == c) & valid, (gt == c) & valid
            intersect[c] += (p & g).sum()
            union[c] += (p | g).sum()
    with np.errstate(invalid='ignore', divide='ignore'):
        return intersect / union


def mean_iou(ious: np.ndarray) -> float:
    """mIoU in percent over the classes that occur (mmseg's reading), unrounded."""
    return float(np.nanmean(ious) * 100)


def top1(samples) -> float:
    """Top-1 accuracy in percent: the argmax of each sample's ``pred_score`` against its label."""
    hits = [int(s.pred_score.argmax()) == int(s.gt_label) for s in samples]
    return 100.0 * sum(hits) / len(hits)


def depth_errors(samples, min_depth: float, max_depth: float) -> dict:
    """The depth metrics of Eigen et al. over the pixels whose ground truth lies in
    (``min_depth``, ``max_depth``), pooled over all samples: d1-d3 (the share of pixels with
    max(p / g, g / p) < 1.25^k), abs_rel, rmse, log10."""
    preds, gts = [], []
    for sample in samples:
        pred = sample.pred_depth_map.data.squeeze().cpu().double()
        gt = sample.gt_depth_map.data.squeeze().cpu().double()
        keep = (gt > min_depth) & (gt < max_depth)
        preds.append(pred[keep])
        gts.append(gt[keep])
    pred, gt = torch.cat(preds), torch.cat(gts)
    ratio = torch.maximum(pred / gt, gt / pred)
    return dict(d1=(ratio < 1.25).double().mean().item(),
                d2=(ratio < 1.25**2).double().mean().item(),
                d3=(ratio < 1.25**3).double().mean().item(),
                abs_rel=((pred - gt).abs() / gt).mean().item(),
                rmse=((pred - gt)**2).mean().sqrt().item(),
                log10=(pred.log10() - gt.log10()).abs().mean().item())


def coco_ap50(ann_file: str, samples, class_names, cat_names=None) -> float:
    """AP at IoU 0.5 by pycocotools' COCOeval over the categories named ``cat_names`` (default:
    all of ``class_names``), from the samples' ``pred_instances`` whose labels index
    ``class_names`` (category ids looked up by name in ``ann_file``)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(ann_file)
    ids = {cat['name']: cat['id'] for cat in gt.loadCats(gt.getCatIds())}
    results = []
    for sample in samples:
        instances = sample.pred_instances
        for box, score, label in zip(instances.bboxes.tolist(), instances.scores.tolist(),
                                     instances.labels.tolist()):
            x0, y0, x1, y1 = box
            results.append(dict(image_id=sample.img_id, category_id=ids[class_names[label]],
                                bbox=[x0, y0, x1 - x0, y1 - y0], score=score))
    if not results:
        return 0.0
    evaluation = COCOeval(gt, gt.loadRes(results), 'bbox')
    evaluation.params.catIds = [ids[n] for n in (cat_names or class_names)]
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return float(evaluation.stats[1])


def _test_with_recorder(runner):
    recorder = record_test_predictions(runner)
    metrics = runner.test()
    assert recorder.samples, 'the test loop predicted nothing'
    return metrics, recorder.samples, runner.test_loop.dataloader.dataset.metainfo


def checked_test_miou(runner) -> dict:
    """``runner.test()``, its mIoU checked against pixels counted by hand (mmseg rounds to two
    decimals); returns the metrics."""
    metrics, samples, metainfo = _test_with_recorder(runner)
    expected = mean_iou(class_ious(samples, len(metainfo['classes'])))
    assert abs(metrics['mIoU'] - expected) <= 0.006, (metrics['mIoU'], expected)
    return metrics


def checked_test_top1(runner, key: str = 'accuracy/top1') -> dict:
    """``runner.test()``, its top-1 checked against the predictions' argmax by hand."""
    metrics, samples, _ = _test_with_recorder(runner)
    expected = top1(samples)
    assert abs(metrics[key] - expected) < 1e-4, (metrics[key], expected)
    return metrics


def checked_test_ap50(runner, subsets=(('coco/bbox_mAP_50', None), )) -> dict:
    """``runner.test()``, each AP50 of ``subsets`` ((metric key, metainfo key of its class names
    or ``None`` for all)) checked against pycocotools (mmdet rounds to three decimals)."""
    metrics, samples, metainfo = _test_with_recorder(runner)
    names = list(metainfo['classes'])
    ann_file = runner.cfg.test_evaluator.ann_file
    for key, subset in subsets:
        expected = coco_ap50(ann_file, samples, names,
                             list(metainfo[subset]) if subset else None)
        assert abs(metrics[key] - expected) <= 6e-4, (key, metrics[key], expected)
    return metrics


def calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE by hand: ``n_bins`` equal-width confidence bins [i / n, (i + 1) / n) (a confidence of
    1 in the last), the size-weighted mean of |accuracy - mean confidence| per bin."""
    confidence, predicted = probs.double().max(1)
    correct = (predicted == labels).double()
    bins = (confidence * n_bins).long().clamp(max=n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            gap = (correct[inside].mean() - confidence[inside].mean()).abs()
            total += inside.double().mean().item() * gap.item()
    return total

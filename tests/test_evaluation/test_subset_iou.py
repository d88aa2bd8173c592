"""ClassSubsetIoUMetric: mmseg's IoUMetric plus the mIoU of class subsets (seen / unseen), checked
against mmseg's own per-class IoU and a numpy count of the pixels."""
import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric

from genrep.evaluation.metrics import ClassSubsetIoUMetric

CLASSES = ('cat', 'dog', 'fish', 'tree', 'boat', 'moon')
SEEN = ['cat', 'fish', 'tree', 'moon']
UNSEEN = ['dog', 'boat']


def samples(seed=0, count=3, size=(12, 16)):
    """Predictions and labels over 6 classes with ignored pixels; 'moon' (5) never occurs, in
    neither, so its IoU is NaN and stays out of every mean."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        label = rng.integers(0, 5, size)
        label[rng.random(size) < 0.2] = 255
        pred = np.where(rng.random(size) < 0.6, label, rng.integers(0, 5, size))
        pred[pred == 255] = 0
        out.append(dict(pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                        gt_sem_seg=dict(data=torch.from_numpy(label)[None])))
    return out


def evaluate(metric, data_samples, meta):
    metric.dataset_meta = meta
    metric.process({}, data_samples)
    return metric.compute_metrics(metric.results)


def numpy_iou(data_samples, num_classes):
    """IoU per class from the pixels: |pred = c and label = c| / |pred = c or label = c| over the
    labelled pixels of all images (NaN where both are empty)."""
    inter, union = np.zeros(num_classes), np.zeros(num_classes)
    for sample in data_samples:
        pred = sample['pred_sem_seg']['data'][0].numpy()
        label = sample['gt_sem_seg']['data'][0].numpy()
        valid = label != 255
        for c in range(num_classes):
            p, g = (pred == c) & valid, (label == c) & valid
            inter[c] += (p & g).sum()
            union[c] += (p | g).sum()
    with np.errstate(invalid='ignore'):
        return inter / union


@pytest.mark.parametrize('subsets', [('seen', 'unseen'), dict(seen=SEEN, unseen=UNSEEN)])
def test_subset_miou_against_mmseg_per_class_iou(subsets):
    data_samples = samples()
    meta = dict(classes=CLASSES, seen=SEEN, unseen=UNSEEN)
    reference = IoUMetric()
    expected = evaluate(reference, data_samples, meta)
    # mmseg's per-class IoU, from its own areas.
    areas = [sum(a) for a in zip(*reference.results)]
    mmseg_iou = np.asarray(IoUMetric.total_area_to_metrics(*areas, ['mIoU'])['IoU'])
    np.testing.assert_allclose(mmseg_iou, numpy_iou(data_samples, len(CLASSES)), rtol=1e-6)
    assert np.isnan(mmseg_iou[CLASSES.index('moon')])

    metrics = evaluate(ClassSubsetIoUMetric(class_subsets=subsets), data_samples, meta)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert metrics[key] == expected[key]
    for name, names in (('seen', SEEN), ('unseen', UNSEEN)):
        values = [mmseg_iou[CLASSES.index(n)] for n in names if n != 'moon']
        assert metrics[f'mIoU_{name}'] == pytest.approx(round(100 * float(np.mean(values)), 2))
    # Every class but 'moon' is in the mean of all classes: the subsets split it.
    assert metrics['mIoU'] == pytest.approx(round(100 * float(np.nanmean(mmseg_iou)), 2))


def test_a_subset_never_labelled_nor_predicted_is_nan():
    metrics = evaluate(ClassSubsetIoUMetric(class_subsets=dict(sky=['moon'])), samples(),
                       dict(classes=CLASSES))
    assert np.isnan(metrics['mIoU_sky'])


def test_unknown_subsets_are_named():
    with pytest.raises(ValueError, match=r"class_subsets \['rare'\] are not in the dataset"):
        evaluate(ClassSubsetIoUMetric(class_subsets=['rare']), samples(), dict(classes=CLASSES))
    with pytest.raises(ValueError, match=r"class_subsets\['odd'\] names classes the dataset does "
                       r"not have: \['zebra'\]"):
        evaluate(ClassSubsetIoUMetric(class_subsets=dict(odd=['zebra'])), samples(),
                 dict(classes=CLASSES))
    with pytest.raises(ValueError, match="must include 'mIoU'"):
        ClassSubsetIoUMetric(class_subsets=['seen'], iou_metrics=['mDice'])

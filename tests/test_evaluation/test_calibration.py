"""ExpectedCalibrationError: the ECE and the signed confidence gap against hand computations and
known cases, and the diagram."""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmpretrain.structures import DataSample

from genrep.evaluation.metrics.calibration import ExpectedCalibrationError, reliability_bins
from genrep.registry import METRICS

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def hand_ece(scores, labels, n_bins):
    """ECE by a loop over the bins [k/B, (k+1)/B) (the last one closed), in numpy."""
    confidences, predictions = scores.max(axis=1), scores.argmax(axis=1)
    correct = (predictions == labels).astype(np.float64)
    ece = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        in_bin = (confidences >= lo) & ((confidences < hi) | (k == n_bins - 1))
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidences[in_bin].mean())
    return ece


def evaluate(scores, labels, **kwargs):
    """The metric through mmengine's Evaluator, from mmpretrain DataSamples as a classifier
    outputs them."""
    evaluator = Evaluator(METRICS.build(dict(type='genrep.ExpectedCalibrationError', **kwargs)))
    samples = [
        DataSample().set_pred_score(torch.as_tensor(s, dtype=torch.float32)).set_gt_label(int(y))
        for s, y in zip(scores, labels)
    ]
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def calibrated_scores(confidences, num_classes, rng):
    """Scores whose top class (0 .. C-1, drawn) has probability ``confidences``, the rest shared."""
    n = len(confidences)
    top = rng.integers(0, num_classes, n)
    scores = np.repeat(((1 - confidences) / (num_classes - 1))[:, None], num_classes, axis=1)
    scores[np.arange(n), top] = confidences
    return scores, top


def test_ece_matches_hand_computation():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (500, 10))
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 10, 500)
    for n_bins in (15, 7):
        result = evaluate(scores, labels, n_bins=n_bins)
        assert set(result) == {'calibration/ece', 'calibration/confidence_gap'}
        assert result['calibration/ece'] == pytest.approx(hand_ece(scores, labels, n_bins),
                                                          abs=1e-5)
        accuracy = (scores.argmax(1) == labels).mean()
        assert result['calibration/confidence_gap'] == pytest.approx(
            scores.max(1).mean() - accuracy, abs=1e-6)


@pytest.mark.parametrize('confidence, sign', [(0.9, 1), (0.3, -1)])
def test_confidence_gap_says_which_way_and_is_the_one_bin_ece(confidence, sign):
    # Every prediction at one confidence, 60% of them right: over- (0.9) or underconfident (0.3).
    rng = np.random.default_rng(4)
    scores, predictions = calibrated_scores(np.full(100, confidence), 10, rng)
    labels = predictions.copy()
    labels[60:] = (labels[60:] + 1) % 10
    result = evaluate(scores, labels, n_bins=1)
    assert result['calibration/confidence_gap'] == pytest.approx(sign * abs(confidence - 0.6),
                                                                 abs=1e-6)
    assert abs(result['calibration/confidence_gap']) == pytest.approx(result['calibration/ece'],
                                                                      abs=1e-6)


def test_ece_of_perfectly_calibrated_predictions_is_near_zero():
    rng = np.random.default_rng(1)
    confidences = rng.uniform(0.15, 1.0, 20000)
    scores, predictions = calibrated_scores(confidences, 10, rng)
    # Correct with probability equal to the confidence; otherwise another class.
    wrong = rng.uniform(size=len(confidences)) >= confidences
    labels = np.where(wrong, (predictions + rng.integers(1, 10, len(predictions))) % 10,
                      predictions)
    assert evaluate(scores, labels)['calibration/ece'] < 0.02


@pytest.mark.parametrize('confidence', [1.0, 0.99])
def test_ece_of_confident_half_right_predictions_is_about_half(confidence):
    rng = np.random.default_rng(2)
    scores, predictions = calibrated_scores(np.full(1000, confidence), 10, rng)
    labels = predictions.copy()
    labels[::2] = (labels[::2] + 1) % 10  # every other prediction wrong
    ece = evaluate(scores, labels)['calibration/ece']
    assert ece == pytest.approx(confidence - 0.5, abs=1e-5)


def test_n_bins_is_respected():
    # Half at confidence 0.3, all right; half at 0.9, all wrong. One bin pools them: |0.5 - 0.6|;
    # separate bins: 0.5 * 0.7 + 0.5 * 0.9.
    rng = np.random.default_rng(3)
    scores, predictions = calibrated_scores(np.repeat([0.3, 0.9], 50), 10, rng)
    labels = predictions.copy()
    labels[50:] = (labels[50:] + 1) % 10
    assert evaluate(scores, labels, n_bins=1)['calibration/ece'] == pytest.approx(0.1, abs=1e-5)
    assert evaluate(scores, labels, n_bins=15)['calibration/ece'] == pytest.approx(0.8, abs=1e-5)

    bins = reliability_bins(torch.tensor([0.05, 0.3, 0.3, 1.0]), torch.tensor([1, 1, 0, 1]), 4)
    np.testing.assert_array_equal(bins['count'], [1, 2, 0, 1])
    np.testing.assert_allclose(bins['accuracy'], [1, 0.5, 0, 1])
    np.testing.assert_allclose(bins['confidence'], [0.05, 0.3, 0, 1.0])


def test_reliability_diagram_goes_to_the_runs_visualizer(tmp_path):
    """With a visualizer (as a Runner makes one, a LocalVisBackend under the work dir), the
    diagram lands in its vis_image folder; without one, nothing is drawn anywhere."""
    from mmengine.visualization import Visualizer
    rng = np.random.default_rng(4)
    scores, labels = calibrated_scores(rng.uniform(0.2, 1.0, 200), 10, rng)
    Visualizer._instance_dict.clear()
    try:
        Visualizer.get_instance('test_calibration', save_dir=str(tmp_path),
                                vis_backends=[dict(type='LocalVisBackend')])
        evaluate(scores, labels, n_bins=10)
        data = (tmp_path / 'vis_data' / 'vis_image' / 'reliability_diagram_0.png').read_bytes()
    finally:
        Visualizer._instance_dict.clear()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b'IHDR'
    width, height = int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    assert (width, height) == (450, 550)
    assert len(data) > 5000  # bars and text, not a blank canvas


def test_no_diagram_without_a_visualizer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(5)
    scores, labels = calibrated_scores(rng.uniform(0.2, 1.0, 20), 10, rng)
    evaluate(scores, labels)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match='n_bins'):
        ExpectedCalibrationError(n_bins=0)
    metric = ExpectedCalibrationError()
    with pytest.raises(KeyError, match='pred_score'):
        metric.process(None, [dict(pred_label=torch.tensor([1]), gt_label=torch.tensor([1]))])

"""benchmarks/stage2_step.py's teacher clock: the seconds of the posterior's estimate, counted on
the wrapped method of that one object, whatever its denoiser (the semantic copy's passes also serve
the generation branch, so its forward passes cannot tell the teacher's apart)."""
import itertools

import pytest

from benchmarks.stage2_step import CallTimer


class Estimator:
    def __init__(self):
        self.calls = 0

    def _log_likelihood(self, value, fail=False):
        self.calls += 1
        if fail:
            raise RuntimeError('estimate failed')
        return value * 2


def test_call_timer_counts_the_wrapped_calls_only():
    ticks = itertools.count()  # each clock read is one second later
    estimator, other = Estimator(), Estimator()
    timer = CallTimer(estimator, '_log_likelihood', lambda: float(next(ticks)))
    assert estimator._log_likelihood(3) == 6 and estimator.calls == 1
    other._log_likelihood(1)  # another object of the class is not timed
    assert timer.take() == 1.0
    assert timer.take() == 0.0  # taken
    with pytest.raises(RuntimeError, match='estimate failed'):
        estimator._log_likelihood(1, fail=True)
    estimator._log_likelihood(1)
    assert timer.take() == 2.0  # a failed call counts its seconds too

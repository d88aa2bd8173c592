"""Resume from every checkpoint of a 3-epoch tiny run, perception and GenRep stage 2, built as
tools/train.py builds them (tiny_runs.py): each resumed run ends at the uninterrupted run's
weights, max |dW| <= 1e-6 (measured: 0, the same operations in the same order).

Slow: 6 Runners of a tiny UNet a config (about a minute each on 2 cores). The toy version, every
checkpoint of both loops, is in the default tier (test_resume_every_checkpoint.py).
"""
import pytest
from data_fixtures import write_fashion_mnist
from tiny_runs import (PERCEPTION, STAGE2, TOTAL, checkpoint_after, final_weights, max_abs_diff,
                       train)


@pytest.mark.slow
@pytest.mark.parametrize('config', [PERCEPTION, STAGE2], ids=['perception', 'genrep_stage2'])
def test_resume_from_every_checkpoint_of_a_tiny_run(tmp_path, config):
    data = write_fashion_mnist(tmp_path / 'data', num_train=16, num_test=8)
    train(config, data, tmp_path / 'whole')
    reference = final_weights(tmp_path / 'whole')
    drift = {}
    for iteration in range(1, TOTAL):
        work_dir = tmp_path / f'from_{iteration}'
        train(config, data, work_dir,
              resume_from=checkpoint_after(str(tmp_path / 'whole'), iteration))
        drift[iteration] = max_abs_diff(final_weights(work_dir), reference)
    print(f'{config}: max |dW| by resumed iteration {drift}')
    assert max(drift.values()) <= 1e-6, drift

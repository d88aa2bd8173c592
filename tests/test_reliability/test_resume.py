"""A run stopped at any iteration and resumed ends at exactly the weights (and optimizer and
scheduler states) of the uninterrupted run with the same seed.

The toy Runner of toy_runner.py makes every random source of a real run visible and fast. The stop
is an exception raised by a hook before iteration k + 1 starts (everything of iteration k,
checkpoints included, is done), which is what a kill then leaves on disk; the subprocess test of
tools/train.py (tests/test_reliability/test_train_tool.py) uses a real SIGKILL.
"""
import random

import numpy as np
import pytest
import torch
from toy_runner import ITERS_PER_EPOCH, MAX_EPOCHS, Stop, make_runner

from genrep.engine import capture_random_states, restore_random_states
from genrep.engine.checkpoints import find_resumable_checkpoint


def final_state(runner):
    return dict(model={k: v.clone() for k, v in runner.model.state_dict().items()},
                momentum=[s['momentum_buffer'].clone()
                          for s in runner.optim_wrapper.optimizer.state.values()],
                lr=runner.optim_wrapper.get_lr()['lr'][0], iter=runner.iter, epoch=runner.epoch)


def interrupted_then_resumed(tmp_path, loop, stop_before, tag):
    work_dir = tmp_path / tag
    with pytest.raises(Stop):
        make_runner(work_dir, f'{tag}_killed', loop, stop_before=stop_before).train()
    checkpoint = find_resumable_checkpoint(str(work_dir))
    resumed = make_runner(work_dir, f'{tag}_resumed', loop, resume_from=checkpoint)
    resumed.train()
    return checkpoint, final_state(resumed)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    states = {}
    for loop in ('genrep.ResumableEpochBasedTrainLoop', 'genrep.ResumableIterBasedTrainLoop'):
        runner = make_runner(tmp_path_factory.mktemp('whole'), f'whole_{loop}', loop)
        runner.train()
        states[loop] = final_state(runner)
    return states


def assert_same_state(resumed, reference):
    assert resumed['iter'] == reference['iter'] == MAX_EPOCHS * ITERS_PER_EPOCH
    for key, value in reference['model'].items():
        assert torch.equal(resumed['model'][key], value), key
    for got, expected in zip(resumed['momentum'], reference['momentum']):
        assert torch.equal(got, expected)
    assert resumed['lr'] == reference['lr']


# Stopped before iteration 5: iter_4.pth is the newest checkpoint (mid-epoch, nothing to redo);
# before 6: iteration 5 is trained again from iter_4.pth; before 7: epoch_1.pth, written before the
# validation of epoch 1 (the epoch boundary); before 10: iter_8.pth, inside epoch 2.
@pytest.mark.parametrize('stop_before, expected_checkpoint', [(5, 'iter_4.pth'), (6, 'iter_4.pth'),
                                                              (7, 'epoch_1.pth'),
                                                              (10, 'iter_8.pth')])
def test_epoch_loop_resume_equals_uninterrupted(tmp_path, uninterrupted, stop_before,
                                                expected_checkpoint):
    loop = 'genrep.ResumableEpochBasedTrainLoop'
    checkpoint, resumed = interrupted_then_resumed(tmp_path, loop, stop_before, 'epoch')
    assert checkpoint.endswith(expected_checkpoint)
    assert_same_state(resumed, uninterrupted[loop])


def test_resume_from_an_epoch_checkpoint_saved_again_after_validation(tmp_path, uninterrupted):
    """With save_best, mmengine's CheckpointHook writes the epoch checkpoint again after the
    validation (to record the best score); it must still hold the training random states."""
    loop = 'genrep.ResumableEpochBasedTrainLoop'
    best = dict(checkpoint=dict(type='genrep.CheckpointHook', interval=1, iter_interval=2,
                                save_best='accuracy', rule='greater'))
    work_dir = tmp_path / 'best'
    with pytest.raises(Stop):
        make_runner(work_dir, 'best_killed', loop, stop_before=7, hooks=best).train()
    assert (work_dir / 'best_accuracy_epoch_1.pth').is_file()
    checkpoint = find_resumable_checkpoint(str(work_dir))
    assert checkpoint.endswith('epoch_1.pth')
    resumed = make_runner(work_dir, 'best_resumed', loop, resume_from=checkpoint, hooks=best)
    resumed.train()
    assert_same_state(final_state(resumed), uninterrupted[loop])


def test_iter_loop_resume_equals_uninterrupted(tmp_path, uninterrupted):
    loop = 'genrep.ResumableIterBasedTrainLoop'
    checkpoint, resumed = interrupted_then_resumed(tmp_path, loop, 8, 'iter')
    assert checkpoint.endswith('iter_6.pth')  # validated at 6, so the boundary case as well
    assert_same_state(resumed, uninterrupted[loop])


def test_stock_epoch_loop_resume_differs(tmp_path, uninterrupted):
    """The control: mmengine's EpochBasedTrainLoop replays the resumed epoch from its first batch
    with fresh random states, so the same interruption ends elsewhere (this is what the two fixes
    are for)."""
    checkpoint, resumed = interrupted_then_resumed(tmp_path, 'EpochBasedTrainLoop', 5, 'stock')
    reference = uninterrupted['genrep.ResumableEpochBasedTrainLoop']
    assert resumed['iter'] > reference['iter']  # the 4 trained batches were trained again
    assert not torch.equal(resumed['model']['linear.weight'], reference['model']['linear.weight'])


def test_resumed_epoch_logs_its_true_batch_index(tmp_path):
    interrupted_then_resumed(tmp_path, 'genrep.ResumableEpochBasedTrainLoop', 5, 'log')
    # Both runs may start within one second and share the timestamped log file.
    text = ''.join(path.read_text() for path in sorted((tmp_path / 'log').glob('*/*.log')))
    killed, resumed = text.split('skipping its first 4 of 6 batches')
    assert 'Epoch(train) [1][4/6]' in killed and 'Epoch(train) [1][5/6]' not in killed
    assert 'Epoch(train) [1][5/6]' in resumed and 'Epoch(train) [1][1/6]' not in resumed


def test_random_states_survive_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    states = capture_random_states()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.save(dict(random_states=[states]), tmp_path / 'states.pth')
    loaded = torch.load(tmp_path / 'states.pth', weights_only=True)['random_states'][0]
    torch.manual_seed(2)
    np.random.seed(2)
    random.seed(2)
    restore_random_states(loaded)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


@pytest.mark.parametrize('loop, last', [('genrep.ResumableEpochBasedTrainLoop', 'epoch_2.pth'),
                                        ('genrep.ResumableIterBasedTrainLoop', 'iter_12.pth')])
def test_load_from_starts_a_new_run_that_keeps_its_own_random_stream(tmp_path, loop, last):
    """``load_from`` (no resume) takes the weights only: the run ends where a run given the same
    weights by hand ends, also when the checkpoint was written with another number of batches per
    epoch (a stage run on a subset of the data, from the previous stage's checkpoint)."""
    make_runner(tmp_path / 'source', 'load_from_source', loop).train()
    checkpoint = torch.load(tmp_path / 'source' / last, map_location='cpu', weights_only=False)
    assert checkpoint['random_states'] and checkpoint['meta']['train_batches_per_epoch'] == 6
    checkpoint['meta']['train_batches_per_epoch'] = 5
    torch.save(checkpoint, tmp_path / 'other_data.pth')

    loaded = make_runner(tmp_path / 'loaded', 'load_from_loaded', loop,
                         load_from=str(tmp_path / 'other_data.pth'))
    loaded.train()
    by_hand = make_runner(tmp_path / 'by_hand', 'load_from_by_hand', loop)
    by_hand.model.load_state_dict(checkpoint['state_dict'])
    by_hand.train()
    assert_same_state(final_state(loaded), final_state(by_hand))

"""A run stopped at any iteration and resumed ends at exactly the weights (and optimizer and scheduler
states) of the uninterrupted run with the same seed.

A toy model and dataset make every random source of a real run visible and fast: the augmentation
draws from numpy and python in the main process (``num_workers=0``, as the tiny test configs), the
model draws its own noise from torch in training and validation, the sampler shuffles, the learning
rate follows an iteration-based schedule and SGD keeps momentum. The stop is an exception raised by
a hook before iteration k + 1 starts (everything of iteration k, checkpoints included, is done),
which is what a kill then leaves on disk; the subprocess test of tools/train.py
(tests/test_reliability/test_train_tool.py) uses a real SIGKILL.
"""
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from genrep.engine import capture_random_states, restore_random_states
from genrep.engine.checkpoints import find_resumable_checkpoint

ITERS_PER_EPOCH = 6  # 24 samples, batch 4
MAX_EPOCHS = 2


class AugmentedToyData(Dataset):
    def __init__(self, size=24):
        generator = torch.Generator().manual_seed(123)
        self.inputs = torch.randn(size, 4, generator=generator)
        self.labels = torch.randint(0, 2, (size, ), generator=generator)

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        sign = 1.0 if np.random.rand() < 0.5 else -1.0  # a flip, drawn as mmcv's RandomFlip does
        scale = 1.0 + 0.1 * random.random()
        return dict(inputs=self.inputs[index] * sign * scale, labels=self.labels[index])


class NoisyToy(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='loss'):
        logits = self.linear(inputs + 0.1 * torch.randn_like(inputs))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        return [dict(pred=p, label=t) for p, t in zip(logits.argmax(1), labels)]


class ToyAccuracy(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.extend(int(s['pred'] == s['label']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(accuracy=100.0 * sum(results) / len(results))


class Stop(Exception):
    pass


class StopBeforeIteration(Hook):
    """Raises before iteration ``number`` (1-based) begins."""
    priority = 'HIGHEST'

    def __init__(self, number):
        self.number = number

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.number:
            raise Stop(self.number)


def make_runner(work_dir, name, loop='genrep.ResumableEpochBasedTrainLoop', stop_before=None,
                resume_from=None):
    by_epoch = 'Epoch' in loop
    train_cfg = dict(type=loop, val_interval=1 if by_epoch else ITERS_PER_EPOCH)
    if loop in ('EpochBasedTrainLoop', 'IterBasedTrainLoop'):
        train_cfg = dict(by_epoch=by_epoch, val_interval=train_cfg['val_interval'])
    if by_epoch:
        train_cfg['max_epochs'] = MAX_EPOCHS
    else:
        train_cfg['max_iters'] = MAX_EPOCHS * ITERS_PER_EPOCH
    checkpoint = dict(type='genrep.CheckpointHook', interval=1, iter_interval=2)
    if not by_epoch:
        checkpoint = dict(type='genrep.CheckpointHook', by_epoch=False, interval=2)
    loader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='default_collate'))
    sampler = 'DefaultSampler' if by_epoch else 'InfiniteSampler'
    torch.manual_seed(0)  # the same initial weights in every run (built before the Runner seeds)
    return Runner(
        model=NoisyToy(),
        work_dir=str(work_dir),
        experiment_name=name,  # a process-wide message hub and logger of its own
        train_dataloader=dict(dataset=AugmentedToyData(), sampler=dict(type=sampler, shuffle=True),
                              **loader),
        val_dataloader=dict(dataset=AugmentedToyData(8),
                            sampler=dict(type='DefaultSampler', shuffle=False), **loader),
        val_cfg=dict(),
        val_evaluator=[ToyAccuracy()],
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.2, momentum=0.9)),
        param_scheduler=dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                             end=MAX_EPOCHS * ITERS_PER_EPOCH),
        default_hooks=dict(checkpoint=checkpoint, logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[StopBeforeIteration(stop_before)] if stop_before else None,
        randomness=dict(seed=0),
        resume=resume_from is not None,
        load_from=resume_from,
        default_scope='mmengine',
    )


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

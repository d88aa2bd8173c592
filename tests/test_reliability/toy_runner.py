"""A toy Runner in which every random source of a real run is visible, fast enough for the default
tier: the augmentation draws from numpy and python in the main process (``num_workers=0``, as the
tiny test configs), the model draws its own noise from torch in training and validation, the sampler
shuffles, the learning rate follows an iteration-based schedule and SGD keeps momentum."""
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

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
                resume_from=None, lr=0.2, hooks=None, optim_wrapper=None, load_from=None,
                max_epochs=MAX_EPOCHS, num_workers=0, persistent_workers=False,
                custom_hooks=()):
    """A Runner of NoisyToy on AugmentedToyData: ``max_epochs`` (2) epochs of 6 iterations,
    validated after each, checkpoints every epoch and every 2 iterations; ``hooks`` are added to
    (or replace) the default hooks. ``resume_from`` resumes a run; ``load_from`` starts a new one
    from a checkpoint's weights. ``num_workers`` > 0 moves the augmentation draws into data
    workers."""
    by_epoch = 'Epoch' in loop
    train_cfg = dict(type=loop, val_interval=1 if by_epoch else ITERS_PER_EPOCH)
    if loop in ('EpochBasedTrainLoop', 'IterBasedTrainLoop'):
        train_cfg = dict(by_epoch=by_epoch, val_interval=train_cfg['val_interval'])
    if by_epoch:
        train_cfg['max_epochs'] = max_epochs
    else:
        train_cfg['max_iters'] = max_epochs * ITERS_PER_EPOCH
    checkpoint = dict(type='genrep.CheckpointHook', interval=1, iter_interval=2)
    if not by_epoch:
        checkpoint = dict(type='genrep.CheckpointHook', by_epoch=False, interval=2)
    loader = dict(batch_size=4, num_workers=num_workers, persistent_workers=persistent_workers,
                  collate_fn=dict(type='default_collate'))
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
        optim_wrapper=optim_wrapper or dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        param_scheduler=dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                             end=max_epochs * ITERS_PER_EPOCH),
        default_hooks=dict(dict(checkpoint=checkpoint, logger=dict(type='LoggerHook', interval=1)),
                           **(hooks or {})),
        custom_hooks=[*custom_hooks, *([StopBeforeIteration(stop_before)] if stop_before
                                       else [])] or None,
        randomness=dict(seed=0),
        resume=resume_from is not None,
        load_from=resume_from or load_from,
        default_scope='mmengine',
    )

# What the scenes jobs on mmseg share (scenes_seg_unet.py, scenes_depth_unet.py and the configs on
# them): mmseg's runtime with the genrep plugin, AdamW clipped at norm 1, a 100-iteration warm-up
# then poly decay to max_iters, batches of 8 with one worker, one kept checkpoint. A config with
# another max_iters restates param_scheduler and train_cfg, which read it.
_base_ = ['mmseg::_base_/default_runtime.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader

max_iters = 1200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=False, begin=100, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    preemption=dict(type='genrep.PreemptionHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='genrep.CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=True, interval=10))
randomness = dict(seed=0)

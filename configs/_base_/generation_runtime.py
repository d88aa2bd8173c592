# What the generation configs on mmpretrain share (imagenet256_dit.py, celebahq256_ldm.py and the
# configs on them): mmpretrain's runtime with the genrep plugin, the loaders' workers and samplers
# (each config sets its batch size and dataset), iteration-based loops with checkpoints every 10k
# iterations, no learning-rate schedule, the Inception weights of the FID and the weight EMA that
# sampling and testing read.
_base_ = ['mmpretrain::_base_/default_runtime.py']
default_scope = 'mmpretrain'
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

inception_weights = 'checkpoints/pt_inception-2015-12-05-6726825d.pth'

train_dataloader = dict(
    num_workers=8, persistent_workers=True, sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader

param_scheduler = []
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    preemption=dict(type='genrep.PreemptionHook'),
    checkpoint=dict(type='genrep.CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=3))

# The FID's metric (Inception features, no classifier accuracy score); each config adds its real
# images and their count.
generation_metric = dict(
    type='GenerationMetric',
    features=['inception_v3'],
    inception_weights=inception_weights,
    cas=False)
# DiT and LDM sample from an EMA of the weights at 0.9999 (DiT's train.py update_ema; LDM's
# ddpm.py LitEma, whose decay ramps up as min(0.9999, (1 + n) / (10 + n)), which matters only for a
# run from scratch). mmengine's EMAHook (momentum = 1 - decay) keeps it; validation and testing
# swap it in, the generation hook's samples included (the hook runs before EMAHook swaps the
# weights back), and a checkpoint's state_dict holds the EMA weights (the raw ones under
# ema_state_dict).
generation_ema = dict(type='mmengine.EMAHook', momentum=1e-4, update_buffers=False)

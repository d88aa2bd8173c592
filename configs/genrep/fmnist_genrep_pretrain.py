# Generative pretraining of the embedded default's class-conditional denoiser: the checkpoint the
# main job starts from, as the paper starts from a pretrained LDM/DiT (`make pretrain`; the shipped
# result is checkpoints/fmnist_denoiser/, see docs/pretraining.md). Stage 0's loss (noise MSE plus
# the variational-bound term of the learned variance, label dropout 0.1 for classifier-free
# guidance) with the habits of DiT and LDM training: a weight EMA that the exported denoiser (and so
# sampling and the teacher) reads, a warm-up and a cosine decay over the whole schedule.
_base_ = ['./fmnist_genrep_stage0.py']

max_epochs = 16
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_begin=max_epochs + 1)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.0),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=2e-5,
         convert_to_iter_based=True),
]
# EMA of the weights (ExponentialMovingAverage: ema = (1 - m) ema + m theta). DiT and LDM keep
# 0.9999 over ~400k steps; this schedule is ~7.5k steps, so the EMA's horizon is 1/m = 1,000 steps
# (about two epochs), started after the warm-up. mmengine's EMAHook writes the EMA weights into the
# checkpoint's state_dict (the raw ones under ema_state_dict), so a checkpoint read with `load_from`
# or exported is the EMA model.
custom_hooks = [dict(type='EMAHook', momentum=1e-3, begin_iter=500, update_buffers=True)]
# A resumable checkpoint every 200 iterations and at each epoch end, the two newest kept.
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2, iter_interval=200,
                                     save_best=None))

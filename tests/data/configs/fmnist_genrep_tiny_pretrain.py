# The generative pretraining (`make pretrain`) with a tiny UNet and single-process loading, for tests
# of its EMA, resume and export.
_base_ = ['../../../configs/genrep/fmnist_genrep_pretrain.py', './tiny_unet.py']
model = dict(perception=dict(
    backbone=dict(denoiser=dict(config={{_base_.tiny_unet}})),
    head=dict(in_channels=32),
))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]
custom_hooks = [dict(type='EMAHook', momentum=0.1, begin_iter=1, update_buffers=True)]
default_hooks = dict(logger=dict(interval=1))

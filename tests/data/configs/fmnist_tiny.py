# The main job's config with a tiny UNet and single-process loading, for tests of the tools.
_base_ = ['../../../configs/genrep/fmnist_unet_cls.py', './tiny_unet.py']
model = dict(
    backbone=dict(denoiser=dict(config={{_base_.tiny_unet}})),
    head=dict(in_channels=32),
)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))

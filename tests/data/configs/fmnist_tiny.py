# The main job's config with a tiny UNet and single-process loading, for tests of the tools.
_base_ = ['../../../configs/genrep/fmnist_unet_cls.py']
model = dict(
    backbone=dict(
        denoiser=dict(
            config=dict(
                block_out_channels=(8, 16, 16, 32),
                norm_num_groups=4,
                attention_head_dim=8,
            ))),
    head=dict(in_channels=32),
)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))

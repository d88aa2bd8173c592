# GenRep stage 1 with a tiny UNet, a 4-step chain and single-process loading, for tests of the tools.
_base_ = ['../../../configs/genrep/fmnist_genrep_stage1.py', './tiny_unet.py']
model = dict(
    perception=dict(
        backbone=dict(denoiser=dict(
            _delete_=True, type='UNet2DDenoiser', config={{_base_.tiny_unet}})),
        head=dict(in_channels=32),
    ),
    posterior=dict(schedule=dict(num_inference_steps=4), strength=1.0, burn_in=1, thinning=1),
    distill_images=2,
)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
load_from = None  # the tests train stage 1 from scratch

# The VPD-style baseline of the fair comparison (issue 26): `make perception`'s classifier, its
# UNet initialised from the shipped pretrained denoiser (checkpoints/fmnist_denoiser, the main
# job's starting point), trained with cross-entropy alone on the same labelled images. Three
# epochs: about the wall time of the main job's GenRep stages 1 and 2 on this CPU (docs/results.md).
_base_ = ['./fmnist_unet_cls.py']

pretrained_denoiser = 'checkpoints/fmnist_denoiser'
max_epochs = 3
model = dict(backbone=dict(denoiser=dict(
    _delete_=True, type='UNet2DDenoiser', pretrained=pretrained_denoiser)))
# Top-1 and calibration, as GenRep's stages report them.
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='genrep.ExpectedCalibrationError', n_bins=15),
]
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5,
         convert_to_iter_based=True),
]

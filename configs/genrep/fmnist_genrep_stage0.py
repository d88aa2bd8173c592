# GenRep stage 0 on Fashion-MNIST: generative pretraining of the class-conditional denoiser (noise MSE
# plus the variational-bound term of its learned variance). The paper starts from a pretrained
# LDM/DiT; with no such checkpoint for the embedded data, this stage makes one. Stage 1 loads it and
# inherits this file; stage 2 inherits stage 1.
_base_ = [
    '../_base_/models/genrep_unet_fmnist.py',
    '../_base_/datasets/fashion_mnist.py',
    '../_base_/schedules/fmnist_cls.py',
    '../_base_/default_runtime.py',
]

model = dict(stage=0, vlb_weight=1.0, label_dropout=0.1)
# One epoch; nothing of perception trains yet, so nothing is validated (validation would begin after
# epoch 2: mmengine otherwise validates the last epoch whatever the interval) and no best
# checkpoint is kept.
train_cfg = dict(by_epoch=True, max_epochs=1, val_begin=2, val_interval=1)
default_hooks = dict(checkpoint=dict(save_best=None))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=1, eta_min=1e-5,
         convert_to_iter_based=True),
]

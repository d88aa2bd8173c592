# GenRep stage 1 on Fashion-MNIST with few labels: the main job's stage 1 (L_percept = CE +
# L_gen_distil, the same teacher and budget) on the first 5,000 training images for 10 epochs (400
# iterations, close to the 469 of the main job's one epoch), from the same stage-0 checkpoint. The
# regime where cross-entropy leaves the head overconfident, i.e. where distilling a less confident
# teacher could help calibration; the README reports it with and without the distillation
# (fmnist_genrep_stage1_5k_nodistil.py), three seeds. Validated once, after the last epoch.
_base_ = ['./fmnist_genrep_stage1.py']

num_labelled = 5000
max_epochs = 10
train_dataloader = dict(dataset=dict(indices=num_labelled))
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_begin=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5,
         convert_to_iter_based=True),
]

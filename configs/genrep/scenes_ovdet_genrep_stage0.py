# GenRep stage 0 on the embedded scenes' detection job: generative pretraining of
# scenes_ovdet_unet.py's pixel-space UNet2DModel (noise MSE), each scene conditioned on the base
# class of its largest box (genrep.DetectionAdapter), 10% dropped to the null class, so that the
# class tokens the region teacher of stage 1 reads are trained. The paper starts from a pretrained
# LDM/DiT; none exists for these scenes, so this stage makes one. Stage 1 loads it
# (scenes_ovdet_genrep_stage1.py, and its no-distillation control).
_base_ = ['./scenes_ovdet_unet.py']

scheduler = dict(
    num_train_timesteps=1000,
    beta_schedule='linear',
    variance_type='fixed_small',  # the UNet predicts eps only (3 output channels)
    clip_sample=True)
model = dict(
    _delete_=True,
    type='genrep.GenRep',
    perception={{_base_.model}},
    task=dict(type='DetectionAdapter', generation_condition='largest'),
    schedule=dict(type='DiffusionSchedule', scheduler=scheduler),
    stage=0,
    label_dropout=0.1,
)
max_iters = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=50, end=max_iters),
]
# Nothing of perception trains in stage 0: no validation, no drawings.
train_cfg = dict(max_iters=max_iters, val_begin=10**9, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(interval=max_iters),
    visualization=dict(draw=False))

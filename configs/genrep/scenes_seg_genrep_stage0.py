# GenRep stage 0 on the embedded scenes: generative pretraining of scenes_seg_unet.py's pixel-space
# UNet2DModel (noise MSE), each scene conditioned on its dominant labelled class
# (genrep.SegmentationAdapter), 10% dropped to the null class. The paper starts from a pretrained
# LDM/DiT; none exists for these scenes, so this stage makes one, as the Fashion-MNIST job does.
# Stage 1 loads it (scenes_seg_genrep_stage1.py, and its no-distillation control).
_base_ = ['./scenes_seg_unet.py']

scheduler = dict(
    num_train_timesteps=1000,
    beta_schedule='linear',
    variance_type='fixed_small',  # the UNet predicts eps only (3 output channels)
    clip_sample=True)
model = dict(
    _delete_=True,
    type='genrep.GenRep',
    perception={{_base_.model}},
    task=dict(type='SegmentationAdapter', generation_condition='dominant'),
    schedule=dict(type='DiffusionSchedule', scheduler=scheduler),
    stage=0,
    label_dropout=0.1,
)
# Nothing of perception trains in stage 0: no validation, no overlays.
train_cfg = dict(val_begin=10**9)
default_hooks = dict(visualization=dict(draw=False))

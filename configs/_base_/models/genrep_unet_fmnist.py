# GenRep around the perception model of unet_fmnist_cls.py: the classifier's diffusers UNet is the one
# denoiser of perception, the teacher and generation; a linear 1000-step DDPM with the learned-range
# variance (improved DDPM) that the UNet's second output channel predicts. The stage configs set the
# stage and add what it needs (stage 1: the teacher; stage 2: the generation branch's modules).
_base_ = ['./unet_fmnist_cls.py']

scheduler = dict(
    num_train_timesteps=1000,
    beta_schedule='linear',
    variance_type='learned_range',
    clip_sample=True)

model = dict(
    _delete_=True,
    type='genrep.GenRep',
    perception={{_base_.model}},
    task=dict(type='ClassificationAdapter'),
    schedule=dict(type='DiffusionSchedule', scheduler=scheduler),
)

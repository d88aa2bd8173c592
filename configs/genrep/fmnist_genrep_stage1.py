# GenRep stage 1 on Fashion-MNIST (Sec. 3.3): perception only, L_percept = CE + L_gen_distil (Eq. 5),
# the teacher p(y|x) estimated by the reverse chain of the same denoiser (Eq. 2-3), which reads the
# denoiser's learned variance (improved DDPM). CPU-sized chain: T' = 6, m = 2, k = 2 (2 kept
# components; paper: T = 200 for LDM, m = 50, k = 2); the teacher covers the head's top-2 classes
# plus the true one for 8 images of each batch. One epoch, starting from the stage-0 denoiser.
_base_ = ['./fmnist_unet_cls.py']

scheduler = dict(
    num_train_timesteps=1000,
    beta_schedule='linear',
    variance_type='learned_range',
    clip_sample=True)

model = dict(
    _delete_=True,
    type='genrep.GenRep',
    stage=1,
    perception={{_base_.model}},
    schedule=dict(type='DiffusionSchedule', scheduler=scheduler),
    posterior=dict(
        type='ReverseChainPosterior',
        schedule=dict(type='DiffusionSchedule', scheduler=scheduler, num_inference_steps=6),
        burn_in=2,
        thinning=2,
        temperature=0.05),
    distill_loss=dict(type='GenerativeDistillationLoss', loss_weight=1.0),
    num_candidates=2,
    distill_images=8,
)

# Top-1 and calibration (ECE, 15 bins, with a reliability diagram).
test_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(
        type='genrep.ExpectedCalibrationError',
        n_bins=15,
        out_file='work_dirs/fmnist_genrep_stage1/reliability_diagram.png'),
]
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=1, eta_min=1e-5,
         convert_to_iter_based=True),
]
load_from = 'work_dirs/fmnist_genrep_stage0/epoch_1.pth'

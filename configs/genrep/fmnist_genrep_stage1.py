# GenRep stage 1 on Fashion-MNIST (Sec. 3.3): perception only, L_percept = CE + L_gen_distil (Eq. 5),
# the teacher p(y|x) estimated by the reverse chain of the same denoiser (Eq. 2-3), which reads the
# denoiser's learned variance (improved DDPM). CPU-sized chain: 20 respaced steps of which the last
# 6 run (strength 0.3: from t = 250; from pure noise the chain forgets the input on this small
# model, see docs/decisions.md), burn-in m = 2, thinning k = 2 (paper: T = 200, m = 50, k = 2).
# Temperature 0.03: the NLL-fitted value of tools/analysis_tools/teacher_calibration.py on the
# stage-0 checkpoint (teacher top-1 59% on 256 training images, ECE 0.079). The teacher covers the
# head's top-2 classes plus the true one for 8 images of each batch, and its KL is weighted 8/128 so
# that it counts per distilled image as much as the cross-entropy (Eq. 5 per image; weight 1 on the
# 8-image mean cost 11 points of top-1 with this teacher, see docs/decisions.md). One epoch.
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
        schedule=dict(type='DiffusionSchedule', scheduler=scheduler, num_inference_steps=20),
        strength=0.3,
        burn_in=2,
        thinning=2,
        temperature=0.03),
    distill_loss=dict(type='GenerativeDistillationLoss', loss_weight=0.0625),
    num_candidates=2,
    distill_images=8,
)

# Top-1 and calibration (ECE, 15 bins, with a reliability diagram), at validation and test.
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(
        type='genrep.ExpectedCalibrationError',
        n_bins=15,
        out_file='work_dirs/fmnist_genrep_stage1/reliability_diagram.png'),
]
test_evaluator = val_evaluator
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=1, eta_min=1e-5,
         convert_to_iter_based=True),
]
load_from = 'work_dirs/fmnist_genrep_stage0/epoch_1.pth'

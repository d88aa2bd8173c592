# GenRep stage 1 on CelebA-HQ around celebahq256_ldm.py's LDM-4: the attribute head with
# L_percept = cross-entropy + L_gen_distil (Eq. 4-5), the teacher p(y|x) over both attribute
# classes (K = 2) from the class-conditioned reverse steps of the same UNet (T = 200 respaced steps,
# burn-in 50, thinning 2, as the ImageNet configs), for 2 of each GPU's images. Trainable
# (Algorithm 1, lines 8-11): the UNet's attention layers and the head.
_base_ = ['./celebahq256_ldm.py']

model = dict(
    stage=1,
    posterior=dict(
        type='ReverseChainPosterior',
        schedule=dict(type='DiffusionSchedule', scheduler={{_base_.scheduler}},
                      num_inference_steps=200),
        burn_in=50,
        thinning=2,
        strength=1.0,
        # The reading this temperature was set for. The estimator's default, combine='uniform'
        # (measured closer to p(y|x): docs/decisions.md), works on another scale: fit its tau
        # on the checkpoint with tools/analysis_tools/teacher_calibration.py, then switch.
        components='forward',
        combine='geometric',
        antithetic=False,
        temperature=0.25),
    distill_loss=dict(type='GenerativeDistillationLoss', loss_weight=1.0),
    num_candidates=2,
    distill_images=2,
    trainable=[r'^perception\.backbone\.denoiser\.model\..*\.attentions\.',
               r'^perception\.head\.'],
)
# Probing schedule (the paper gives none): 20k iterations, AdamW 1e-3, cosine decay.
max_iters = 20000
train_dataloader = dict(batch_size=32)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
load_from = 'work_dirs/celebahq256_ldm/iter_100000.pth'

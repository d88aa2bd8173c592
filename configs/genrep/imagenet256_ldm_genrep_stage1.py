# GenRep stage 1 on ImageNet 256 around imagenet256_ldm.py's LDM-8: the linear head on the pooled
# deepest decoder level with L_percept = cross-entropy + L_gen_distil (Eq. 4-5), the teacher's
# reverse chain the DiT stage 1's (imagenet256_dit_genrep_stage1.py: T = 200 respaced steps, burn-in
# 50, thinning 2, K = 4 candidates for 2 images a GPU, temperature 1/4 for the 4 x 32 x 32 latents,
# the same size as DiT's) over the LDM's own schedule. Trainable (Algorithm 1, lines 8-11): the
# UNet's attention layers (self- and cross-attention of its transformer blocks) and the head.
_base_ = ['./imagenet256_ldm.py']

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
    num_candidates=4,
    distill_images=2,
    trainable=[r'^perception\.backbone\.denoiser\.model\..*\.attn[12]\.', r'^perception\.head\.'],
)
# The DiT stage 1's probing schedule (the paper gives none for ImageNet).
max_iters = 100000
train_dataloader = dict(batch_size=32)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=10000)
load_from = 'work_dirs/imagenet256_ldm/iter_400000.pth'

# GenRep stage 1 on the embedded scenes: scenes_seg_unet.py's segmentor from the stage-0 denoiser,
# L_percept = cross-entropy + L_gen_distil (Eq. 4-5) per location: the dense teacher p(y|x) (Eq. 2-3)
# at the UNet's input resolution from the class-conditioned reverse steps of the same denoiser,
# against the FPN head's logits (genrep.SegmentationAdapter). CPU budget (the paper's chain is
# T = 200, m = 50, k = 2): 10 respaced steps of which the last half run (strength 0.5, from
# t = 500), burn-in 1, thinning 2: 2 kept steps (forward-noised components and their geometric mean,
# docs/decisions.md), for K = 4 candidates (the classes present,
# largest first, then the head's top scores) on 1 of the 8 images: 8 no-grad UNet calls a step.
# Temperature 1/3: the dense log-likelihood is averaged over the C = 3 channels at each location.
# scenes_seg_genrep_stage1_nodistil.py is the same run without L_gen_distil.
_base_ = ['./scenes_seg_genrep_stage0.py']

model = dict(
    stage=1,
    posterior=dict(
        type='ReverseChainPosterior',
        schedule=dict(type='DiffusionSchedule', scheduler={{_base_.scheduler}},
                      num_inference_steps=10),
        strength=0.5,
        burn_in=1,
        thinning=2,
        # The reading these jobs' figures were measured with (README); the estimator's default is
        # now combine='uniform', which wants its own temperature (docs/decisions.md).
        components='forward',
        combine='geometric',
        antithetic=False,
        temperature=1 / 3),
    distill_loss=dict(type='GenerativeDistillationLoss', loss_weight=1.0),
    num_candidates=4,
    distill_images=1,
)
# Half the segmentation schedule of scenes_seg_unet.py (600 of 1200 iterations): with stage 0's
# 1200 generation iterations, the GenRep chain costs about what the perception-only job costs.
max_iters = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_begin=1, val_interval=max_iters)
default_hooks = dict(visualization=dict(draw=True))
load_from = 'work_dirs/scenes_seg_genrep_stage0/iter_1200.pth'

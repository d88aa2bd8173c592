# GenRep stage 1 on the embedded depth scenes: scenes_depth_unet.py's estimator from the stage-0
# denoiser with an auxiliary scene-class head (genrep.SceneClassHead on the deepest feature),
# L_percept = SiLog depth loss + the scene head's cross-entropy + L_gen_distil (Eq. 4-5): depth has
# no class posterior, so the teacher is the scene-class posterior p(y|x) (Eq. 2-3, image level) of
# the same denoiser's class-conditioned reverse steps, distilled into the scene head, whose
# features the depth head shares (genrep.DepthAdapter). CPU budget as the segmentation chain: 10
# respaced steps, the last half (strength 0.5), burn-in 1, thinning 2 (2 kept steps), K = 4
# candidates (the true class and the head's top scores) on 1 of the 8 images; temperature 1/3
# (the image log-likelihood is averaged over C = 3 channels). scenes_depth_genrep_stage1_nodistil.py
# is the same run without L_gen_distil.
_base_ = ['./scenes_depth_genrep_stage0.py']

model = dict(
    stage=1,
    perception=dict(
        auxiliary_head=dict(type='genrep.SceneClassHead', in_channels=128,
                            num_classes={{_base_.num_classes}})),
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
# Half the depth schedule (400 of 800 iterations): with stage 0's generation iterations, the
# chain costs about what the perception-only job costs.
max_iters = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_begin=1, val_interval=max_iters)
default_hooks = dict(visualization=dict(draw=True))
load_from = 'work_dirs/scenes_depth_genrep_stage0/iter_800.pth'

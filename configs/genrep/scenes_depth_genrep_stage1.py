# GenRep stage 1 on the embedded depth scenes: scenes_depth_unet.py's estimator from the stage-0
# denoiser with an auxiliary scene-class head (genrep.SceneClassHead on the deepest feature),
# L_percept = SiLog depth loss + the scene head's cross-entropy + L_gen_distil (Eq. 4-5): depth has
# no class posterior, so the teacher is the scene-class posterior p(y|x) (Eq. 2-3, image level) of
# the same denoiser's class-conditioned reverse steps, distilled into the scene head, whose
# features the depth head shares (genrep.DepthAdapter); candidates: the true class and the head's
# top scores. The teacher's CPU budget: configs/_base_/models/scenes_genrep.py.
# scenes_depth_genrep_stage1_nodistil.py is the same run without L_gen_distil.
_base_ = ['./scenes_depth_genrep_stage0.py']

model = dict(
    _base_.scenes_genrep_stage1,
    perception=dict(
        auxiliary_head=dict(type='genrep.SceneClassHead', in_channels=128,
                            num_classes={{_base_.num_classes}})),
)
# Half the depth schedule (400 of 800 iterations): with stage 0's generation iterations, the
# chain costs about what the perception-only job costs.
max_iters = 400
param_scheduler = [_base_.scenes_warmup, dict(_base_.scenes_poly_decay, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_begin=1, val_interval=max_iters)
default_hooks = dict(visualization=dict(draw=True))
load_from = 'work_dirs/scenes_depth_genrep_stage0/iter_800.pth'

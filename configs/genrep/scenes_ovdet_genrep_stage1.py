# GenRep stage 1 on the embedded scenes' detection job: scenes_ovdet_unet.py's open-vocabulary
# Faster R-CNN from the stage-0 denoiser, L_percept = the detector's losses + L_gen_distil (Eq. 4-5)
# per region: for each RoI matched to a ground-truth box, the teacher p(y|box) is the dense
# log-likelihood of the class-conditioned reverse steps of the same denoiser (Eq. 2) averaged inside
# the box (RoIAlign), then Bayes (Eq. 3), over K = 4 candidates (the image's box classes, then the
# RoI head's top scores), base classes only (the training vocabulary); the KL is to the RoI
# classifier's scores (genrep.DetectionAdapter). The teacher's CPU budget (8 no-grad UNet calls a
# step): configs/_base_/models/scenes_genrep.py.
# scenes_ovdet_genrep_stage1_nodistil.py is the same run without L_gen_distil.
_base_ = ['./scenes_ovdet_genrep_stage0.py']

model = _base_.scenes_genrep_stage1
max_iters = 500
param_scheduler = [_base_.scenes_warmup, dict(_base_.scenes_cosine_decay, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_begin=1, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(interval=max_iters),
    visualization=dict(draw=True, score_thr=0.1))
load_from = 'work_dirs/scenes_ovdet_genrep_stage0/iter_400.pth'

# GenRep stage 1 on the embedded scenes: scenes_seg_unet.py's segmentor from the stage-0 denoiser,
# L_percept = cross-entropy + L_gen_distil (Eq. 4-5) per location: the dense teacher p(y|x) (Eq. 2-3)
# at the UNet's input resolution from the class-conditioned reverse steps of the same denoiser,
# against the FPN head's logits (genrep.SegmentationAdapter); candidates: the classes present,
# largest first, then the head's top scores. The teacher's CPU budget (8 no-grad UNet calls a
# step): configs/_base_/models/scenes_genrep.py.
# scenes_seg_genrep_stage1_nodistil.py is the same run without L_gen_distil.
_base_ = ['./scenes_seg_genrep_stage0.py']

model = _base_.scenes_genrep_stage1
# Half the segmentation schedule of scenes_seg_unet.py (600 of 1200 iterations): with stage 0's
# 1200 generation iterations, the GenRep chain costs about what the perception-only job costs.
max_iters = 600
param_scheduler = [_base_.scenes_warmup, dict(_base_.scenes_poly_decay, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_begin=1, val_interval=max_iters)
default_hooks = dict(visualization=dict(draw=True))
load_from = 'work_dirs/scenes_seg_genrep_stage0/iter_1200.pth'

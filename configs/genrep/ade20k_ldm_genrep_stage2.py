# GenRep stage 2 (Sec. 3.3) on ADE20K: joint perception (Eq. 5, as stage 1) and semantic-driven
# generation (Eq. 6-10: the semantic adjustment of the reverse step and the representation
# alignment to x_sem), the two gradients aligned (Eq. 11-16: w_p = 0.7, w_g = 0.3,
# alpha = ((cos + 1) / 2)^2), the semantic denoiser an EMA (m = 0.999) of the unified one. The
# generation branch is conditioned on each crop's dominant class (genrep.SegmentationAdapter), which
# trains the class tokens the dense teacher reads.
# From the stage-1 checkpoint, on the same 160k schedule (the paper aligns the synthesis training
# with the perception task's); the two new modules train with the stage-1 parameters.
_base_ = ['./ade20k_ldm_genrep_stage1.py']

model = dict(_base_.latent_genrep_stage2, num_candidates=6,
             trainable=_base_.model.trainable + _base_.stage2_trainable)
optim_wrapper = _base_.gradient_align_optim_wrapper
# Teacher budget: stage 1's with K = 6 classes (the generation branch leaves it more room: 9.0% of
# the stage's FLOPs, docs/paper_cost.md).
custom_hooks = [_base_.semantic_ema_hook, _base_.teacher_interval_hook]
load_from = 'work_dirs/ade20k_ldm_genrep_stage1/iter_160000.pth'

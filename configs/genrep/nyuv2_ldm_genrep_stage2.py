# GenRep stage 2 (Sec. 3.3) on NYUv2: joint depth perception (Eq. 5, as stage 1) and
# semantic-driven generation (Eq. 6-10), conditioned on each image's scene class (the class tokens
# the scene teacher reads), the two gradients aligned (Eq. 11-16: w_p = 0.7, w_g = 0.3,
# alpha = ((cos + 1) / 2)^2), the semantic denoiser an EMA (m = 0.999) of the unified one. From the
# stage-1 checkpoint, on the same 40k schedule.
_base_ = ['./nyuv2_ldm_genrep_stage1.py']

model = dict(_base_.latent_genrep_stage2, num_candidates=5,
             trainable=_base_.model.trainable + _base_.stage2_trainable)
optim_wrapper = _base_.gradient_align_optim_wrapper
# Teacher budget: stage 1's with K = 6 scenes (the true one and the head's top 5: 9.0% of the
# stage's FLOPs, docs/paper_cost.md).
custom_hooks = [_base_.semantic_ema_hook, _base_.teacher_interval_hook]
load_from = 'work_dirs/nyuv2_ldm_genrep_stage1/iter_40000.pth'

# GenRep stage 2 on CelebA-HQ with the LDM-4 (the paper's Table 7 "LDM-4 + GenRep" row): the
# attribute head (Eq. 5, as stage 1) and semantic-driven generation (Eq. 6-10), gradients aligned
# (Eq. 11-16: w_p = 0.7, w_g = 0.3), the semantic denoiser an EMA (m = 0.999); the variational bound
# trains the semantic adjustment (LDM's own variance is fixed). Testing reports the attribute
# accuracy and the unconditional generation metrics of celebahq256_ldm.py from the same checkpoint.
_base_ = ['./celebahq256_ldm_genrep_stage1.py']

model = dict(_base_.latent_genrep_stage2, vlb_weight=1.0,
             distill_images=40,  # 5 a GPU: 9.4% of the stage's FLOPs (docs/paper_cost.md)
             trainable=_base_.model.trainable + _base_.stage2_trainable)
optim_wrapper = dict(_base_.gradient_align_optim_wrapper, optimizer=dict(lr=1e-4))
# the weight EMA that sampling and testing read (0.9999, as DiT and LDM), beside the semantic
# denoiser's own EMA (m = 0.999, Sec. 3.2)
custom_hooks = [_base_.semantic_ema_hook, _base_.generation_eval, _base_.generation_ema]
load_from = 'work_dirs/celebahq256_ldm_genrep_stage1/iter_20000.pth'

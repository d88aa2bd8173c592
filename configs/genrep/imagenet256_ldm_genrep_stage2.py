# GenRep stage 2 on ImageNet 256 with the LDM-8 (the paper's Table 6 "LDM-8 + GenRep" row): joint
# classification (Eq. 5) and semantic-driven generation (Eq. 6-10), gradients aligned (Eq. 11-16:
# w_p = 0.7, w_g = 0.3), the semantic denoiser an EMA (m = 0.999). The semantic adjustment's
# variance term is trained by the variational bound (vlb_weight 1: it is the bound's only
# learner here, LDM's variance being fixed). Testing reports top-1/top-5 and the generation
# metrics of imagenet256_ldm.py (200 DDPM steps) from the same checkpoint.
_base_ = ['./imagenet256_ldm_genrep_stage1.py']

model = dict(_base_.latent_genrep_stage2, vlb_weight=1.0,
             distill_images=24,  # 3 a GPU: 9.1% of the stage's FLOPs (docs/paper_cost.md)
             trainable=_base_.model.trainable + _base_.stage2_trainable)
optim_wrapper = dict(_base_.gradient_align_optim_wrapper, optimizer=dict(lr=1e-4))
# the weight EMA that sampling and testing read (0.9999, as DiT and LDM), beside the semantic
# denoiser's own EMA (m = 0.999, Sec. 3.2)
custom_hooks = [_base_.semantic_ema_hook, _base_.generation_eval, _base_.generation_ema]
load_from = 'work_dirs/imagenet256_ldm_genrep_stage1/iter_100000.pth'

# GenRep stage 2 on ImageNet 256: joint classification (Eq. 5, as stage 1) and semantic-driven
# generation (Eq. 6-10: the semantic adjustment of the reverse step and the representation
# alignment), gradients aligned (Eq. 11-16: w_p = 0.7, w_g = 0.3), the semantic denoiser an EMA
# (m = 0.999). Testing reports top-1/top-5 and the generation metrics of imagenet256_dit.py from the
# same checkpoint (ancestral sampling: the adjusted reverse step needs DDPM steps).
_base_ = ['./imagenet256_dit_genrep_stage1.py']

model = dict(_base_.latent_genrep_stage2,
             distill_images=24,  # 3 a GPU: 9.5% of the stage's FLOPs (docs/paper_cost.md)
             trainable=_base_.model.trainable + _base_.stage2_trainable)
optim_wrapper = dict(_base_.gradient_align_optim_wrapper, optimizer=dict(lr=1e-4))
# the weight EMA that sampling and testing read (0.9999, as DiT and LDM), beside the semantic
# denoiser's own EMA (m = 0.999, Sec. 3.2)
custom_hooks = [_base_.semantic_ema_hook, _base_.generation_eval, _base_.generation_ema]
load_from = 'work_dirs/imagenet256_dit_genrep_stage1/iter_100000.pth'

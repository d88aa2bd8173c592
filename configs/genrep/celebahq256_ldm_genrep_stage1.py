# GenRep stage 1 on CelebA-HQ around celebahq256_ldm.py's LDM-4: the attribute head with
# L_percept = cross-entropy + L_gen_distil (Eq. 4-5), the teacher p(y|x) over both attribute
# classes (K = 2) from the class-conditioned reverse steps of the same UNet (the ImageNet configs'
# teacher; the budget at the end of this file). Trainable
# (Algorithm 1, lines 8-11): the UNet's attention layers and the head.
_base_ = ['./celebahq256_ldm.py', '../_base_/models/genrep_stages.py']

model = dict(_base_.genrep_stage1, num_candidates=2, distill_images=16,
             # stable_diffusion_teacher.py's sd_teacher (its reading, temperature and budget)
             # on this model's own schedule
             posterior=dict(_base_.sd_teacher, schedule=dict(_base_.sd_teacher.schedule,
                                                             scheduler=_base_.scheduler)),
             trainable=[r'^perception\.backbone\.denoiser\.model\..*\.attentions\.',
                        r'^perception\.head\.'])
# Probing schedule (the paper gives none): 20k iterations, AdamW 1e-3, cosine decay.
max_iters = 20000
train_dataloader = dict(batch_size=32)
optim_wrapper = _base_.probe_optim_wrapper
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
load_from = 'work_dirs/celebahq256_ldm/iter_100000.pth'
# Perception probing: the generation hook without the weight EMA of stage 0 and 2 (the head would
# be tested as its average over the last ~10k iterations).
custom_hooks = [{{_base_.generation_eval}}]
# Teacher budget (issue 23, docs/paper_cost.md): <= 10% of the stage's FLOPs, the paper's +10.1%
# (Table 15): S = 2 denoiser calls a class (the last two kept steps of a 10-step chain, burn-in
# 6, thinning 2: t about 200 and 0, one antithetic pair), K = 2 classes, 16 images of each
# global batch (2 a GPU): 9.6% of the FLOPs. The paper's chain as written:
# the --cfg-options of configs/_base_/models/stable_diffusion_teacher.py.

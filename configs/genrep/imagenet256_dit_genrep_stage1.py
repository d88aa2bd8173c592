# GenRep stage 1 on ImageNet 256 around imagenet256_dit.py's DiT-XL/2: perception (the linear head
# on the pooled DiT features) with L_percept = cross-entropy + L_gen_distil (Eq. 4-5), the teacher
# p(y|x) from the class-conditioned reverse steps of the same DiT (Eq. 2-3): forward-noised
# components and their geometric mean (docs/decisions.md), candidates the label and the head's
# top scores; the budget at the end of this file.
# Temperature 1/4: the latent log-likelihood is per dimension (4 channels x 32 x 32), tau scales it.
# Trainable (Algorithm 1, lines 8-11): the DiT's attention layers and the head.
_base_ = ['./imagenet256_dit.py', '../_base_/models/genrep_stages.py']

model = dict(_base_.genrep_stage1, num_candidates=3, distill_images=8,
             # stable_diffusion_teacher.py's sd_teacher (its reading, temperature and budget)
             # on this model's own schedule
             posterior=dict(_base_.sd_teacher, schedule=dict(_base_.sd_teacher.schedule,
                                                             scheduler=_base_.scheduler)),
             trainable=[r'^perception\.backbone\.denoiser\.model\..*\.attn1\.',
                        r'^perception\.head\.'])
# Linear probing length of the paper's ImageNet classification rows is not given: 20 epochs-worth
# (100k iterations of 256 images), AdamW 1e-3 with cosine decay, validated every 10k iterations.
max_iters = 100000
optim_wrapper = _base_.probe_optim_wrapper
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=10000)
load_from = 'work_dirs/imagenet256_dit/iter_400000.pth'
# Perception probing: the generation hook without the weight EMA of stage 0 and 2 (the head would
# be tested as its average over the last ~10k iterations).
custom_hooks = [{{_base_.generation_eval}}]
# Teacher budget (issue 23, docs/paper_cost.md): <= 10% of the stage's FLOPs, the paper's +10.1%
# (Table 15): S = 2 denoiser calls a class (the last two kept steps of a 10-step chain, burn-in
# 6, thinning 2: t about 200 and 0, one antithetic pair), K = 4 classes, 8 images of each
# global batch (1 a GPU): 8.2% of the FLOPs. The paper's chain as written:
# the --cfg-options of configs/_base_/models/stable_diffusion_teacher.py.

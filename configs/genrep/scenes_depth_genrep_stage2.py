# GenRep stage 2 on the embedded depth scenes: joint depth perception (Eq. 5, as stage 1) and
# semantic-driven generation (Eq. 6-10, conditioned on the scene class), the two gradients aligned
# (Eq. 11-16, w_p = 0.7, w_g = 0.3), the semantic denoiser an EMA (m = 0.999) of the unified one.
# From the stage-1 checkpoint; 200 joint iterations.
_base_ = ['./scenes_depth_genrep_stage1.py']

max_iters = 200
model = {{_base_.genrep_stage2}}
optim_wrapper = {{_base_.stage2_optim_wrapper}}
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=False, begin=0,
                        end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
custom_hooks = {{_base_.stage2_hooks}}
load_from = 'work_dirs/scenes_depth_genrep_stage1/iter_400.pth'

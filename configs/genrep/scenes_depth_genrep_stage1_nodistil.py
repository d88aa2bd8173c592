# The control of scenes_depth_genrep_stage1.py: the same estimator and scene head, initialisation
# (the stage-0 denoiser) and schedule, without L_gen_distil (no teacher), so the difference between
# the two runs is the generative distillation alone.
_base_ = ['./scenes_depth_genrep_stage1.py']

model = dict(posterior=None, distill_loss=None)

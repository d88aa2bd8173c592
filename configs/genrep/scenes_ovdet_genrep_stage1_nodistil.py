# The control of scenes_ovdet_genrep_stage1.py: the same detector, initialisation (the stage-0
# denoiser) and schedule, without L_gen_distil (no teacher), so the difference between the two runs
# is the region-level generative distillation alone.
_base_ = ['./scenes_ovdet_genrep_stage1.py']

model = dict(posterior=None, distill_loss=None)

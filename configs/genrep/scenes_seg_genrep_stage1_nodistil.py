# The control of scenes_seg_genrep_stage1.py: the same segmentor, initialisation (the stage-0
# denoiser) and schedule, without L_gen_distil (no teacher), so the difference between the two runs
# is the generative distillation alone.
_base_ = ['./scenes_seg_genrep_stage1.py']

model = dict(posterior=None, distill_loss=None)

# The control of fmnist_genrep_stage1_5k.py: the same classifier, initialisation (the stage-0
# checkpoint), data and schedule, without L_gen_distil (no teacher), so the difference between the
# two runs is the generative distillation alone (as the scenes chains' _nodistil configs).
_base_ = ['./fmnist_genrep_stage1_5k.py']

model = dict(posterior=None)

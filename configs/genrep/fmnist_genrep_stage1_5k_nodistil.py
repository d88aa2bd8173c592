# The control of fmnist_genrep_stage1_5k.py: the same classifier, initialisation (the shipped
# pretrained denoiser), data and schedule, without L_gen_distil (no teacher, so neither its frozen
# copy nor its budget hook), so the difference between the two runs is the generative distillation
# alone (as the scenes chains' _nodistil configs).
_base_ = ['./fmnist_genrep_stage1_5k.py']

model = dict(posterior=None, teacher_weights='unified')
custom_hooks = []

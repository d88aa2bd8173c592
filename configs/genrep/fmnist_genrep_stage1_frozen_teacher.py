# GenRep stage 1 on Fashion-MNIST with the teacher kept at the stage-0 weights: the teacher reads
# the semantic copy (teacher_weights='semantic'), which SemanticEMAHook fills from the stage-0
# checkpoint when training starts and, at momentum 1, never moves, while the whole UNet trains for
# perception. With the default (the teacher on the training UNet) the teacher falls from 60% to
# 17% top-1 on training images by iteration 400 (tools/analysis_tools/teacher_staleness.py,
# README). Measured (seed 0): 86.51% / ECE 0.0260, against 86.77% / 0.0432 with the default
# teacher and 86.58% / 0.0089 without distillation. momentum=0.999 gives an EMA teacher
# (86.54% / 0.0311). Stage 2 loaded from this checkpoint refills its semantic copy from the
# unified denoiser (the hook records which stage filled it).
_base_ = ['./fmnist_genrep_stage1.py']

model = dict(teacher_weights='semantic')
custom_hooks = [dict(type='genrep.SemanticEMAHook', momentum=1.0)]

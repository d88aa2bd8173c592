# The few-label stage 1 (fmnist_genrep_stage1_5k.py) with the teacher kept at the stage-0 weights:
# the teacher reads the semantic copy, which SemanticEMAHook fills when the stage starts and, at
# momentum 1, never moves (as fmnist_genrep_stage1_frozen_teacher.py does for the main job's stage
# 1), so the teacher does not follow the shared UNet as it trains for perception alone. L_gen_distil
# at weight 0.5: of the two weights measured (README, three seeds) the one that leaves the head
# calibrated; at 1.0 it ends underconfident.
_base_ = ['./fmnist_genrep_stage1_5k.py']

model = dict(teacher_weights='semantic', distill_loss=dict(loss_weight=0.5))
custom_hooks = [dict(type='genrep.SemanticEMAHook', momentum=1.0)]

# The few-label stage 1 (fmnist_genrep_stage1_5k.py: the main job's stage 1, its teacher frozen at
# the shipped pretrained weights) with L_gen_distil at weight 0.5: of the two weights measured in
# the release before (teacher frozen at a one-epoch stage 0, three seeds, docs/genrep_method.md)
# the one that left the head calibrated; at 1.0 it ended underconfident.
_base_ = ['./fmnist_genrep_stage1_5k.py']

model = dict(distill_loss=dict(loss_weight=0.5))

# GenRep stage 2 on CelebA-HQ with the LDM-4 (the paper's Table 7 "LDM-4 + GenRep" row): the
# attribute head (Eq. 5, as stage 1) and semantic-driven generation (Eq. 6-10), gradients aligned
# (Eq. 11-16: w_p = 0.7, w_g = 0.3), the semantic denoiser an EMA (m = 0.999); the variational bound
# trains the semantic adjustment (LDM's own variance is fixed). Testing reports the attribute
# accuracy and the unconditional generation metrics of celebahq256_ldm.py from the same checkpoint.
_base_ = ['./celebahq256_ldm_genrep_stage1.py']

model = dict(
    stage=2,
    vlb_weight=1.0,
    semantic_noise=dict(hidden_channels=256),
    rep_align=dict(hidden_channels=2048),
    trainable=[
        r'^perception\.backbone\.denoiser\.model\..*\.attentions\.',
        r'^perception\.head\.',
        r'^semantic_noise\.',
        r'^rep_align\.',
    ],
)
optim_wrapper = dict(
    type='genrep.GradientAlignOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    task_weights=dict(percept=0.7, genera=0.3),
    damping_power=2)
custom_hooks = [
    dict(type='genrep.SemanticEMAHook', momentum=0.999),
    {{_base_.generation_eval}},
]
load_from = 'work_dirs/celebahq256_ldm_genrep_stage1/iter_20000.pth'

# GenRep stage 2 (Sec. 3.3) on NYUv2: joint depth perception (Eq. 5, as stage 1) and
# semantic-driven generation (Eq. 6-10), conditioned on each image's scene class (the class tokens
# the scene teacher reads), the two gradients aligned (Eq. 11-16: w_p = 0.7, w_g = 0.3,
# alpha = ((cos + 1) / 2)^2), the semantic denoiser an EMA (m = 0.999) of the unified one. From the
# stage-1 checkpoint, on the same 40k schedule.
_base_ = ['./nyuv2_ldm_genrep_stage1.py']

model = dict(
    stage=2,
    semantic_noise=dict(hidden_channels=256),
    rep_align=dict(hidden_channels=2048),
    trainable=[
        r'^perception\.backbone\.denoiser\.model\..*\.attn[12]\.',
        r'^perception\.decode_head\.',
        r'^perception\.auxiliary_head\.',
        r'^semantic_noise\.',
        r'^rep_align\.',
    ],
)
optim_wrapper = dict(
    type='genrep.GradientAlignOptimWrapper',
    task_weights=dict(percept=0.7, genera=0.3),
    damping_power=2)
custom_hooks = [dict(type='genrep.SemanticEMAHook', momentum=0.999)]
load_from = 'work_dirs/nyuv2_ldm_genrep_stage1/iter_40000.pth'

# GenRep stage 2 on ImageNet 256 with the LDM-8 (the paper's Table 6 "LDM-8 + GenRep" row): joint
# classification (Eq. 5) and semantic-driven generation (Eq. 6-10), gradients aligned (Eq. 11-16:
# w_p = 0.7, w_g = 0.3), the semantic denoiser an EMA (m = 0.999). The semantic adjustment's
# variance term is trained by the variational bound (vlb_weight 1: it is the bound's only
# learner here, LDM's variance being fixed). Testing reports top-1/top-5 and the generation
# metrics of imagenet256_ldm.py (200 DDPM steps) from the same checkpoint.
_base_ = ['./imagenet256_ldm_genrep_stage1.py']

model = dict(
    stage=2,
    vlb_weight=1.0,
    semantic_noise=dict(hidden_channels=256),
    rep_align=dict(hidden_channels=2048),
    trainable=[
        r'^perception\.backbone\.denoiser\.model\..*\.attn[12]\.',
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
load_from = 'work_dirs/imagenet256_ldm_genrep_stage1/iter_100000.pth'

# GenRep stage 2 on ImageNet 256: joint classification (Eq. 5, as stage 1) and semantic-driven
# generation (Eq. 6-10: the semantic adjustment of the reverse step and the representation
# alignment), gradients aligned (Eq. 11-16: w_p = 0.7, w_g = 0.3), the semantic denoiser an EMA
# (m = 0.999). Testing reports top-1/top-5 and the generation metrics of imagenet256_dit.py from the
# same checkpoint (ancestral sampling: the adjusted reverse step needs DDPM steps).
_base_ = ['./imagenet256_dit_genrep_stage1.py']

model = dict(
    stage=2,
    semantic_noise=dict(hidden_channels=256),
    rep_align=dict(hidden_channels=2048),
    trainable=[
        r'^perception\.backbone\.denoiser\.model\..*\.attn1\.',
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
load_from = 'work_dirs/imagenet256_dit_genrep_stage1/iter_100000.pth'

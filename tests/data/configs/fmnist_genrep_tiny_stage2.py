# GenRep stage 2 on top of the tiny stage 1 (load_from is given on the command line).
_base_ = ['./fmnist_genrep_tiny_stage1.py']
model = dict(
    stage=2,
    semantic_noise=dict(hidden_channels=8),
    rep_align=dict(hidden_channels=16),
)
optim_wrapper = dict(type='genrep.GradientAlignOptimWrapper')
custom_hooks = [dict(type='genrep.SemanticEMAHook', momentum=0.999)]

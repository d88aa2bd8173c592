# What the GenRep stages of the scenes jobs (segmentation, depth, open-vocabulary detection) share.
# A job's stage-0 config inherits its perception config and this file; its stages fill their model,
# schedule and hooks with these blocks (`_base_.<name>`: helper variables, which no Runner reads).

# Stage 0 trains the pixel-space UNet2DModel as a diffusion model: it predicts eps only (3 output
# channels), so the reverse step's variance is fixed.
scheduler = dict(
    num_train_timesteps=1000,
    beta_schedule='linear',
    variance_type='fixed_small',
    clip_sample=True)
genrep_schedule = dict(type='DiffusionSchedule', scheduler=scheduler)
# A job's stage 0: its perception model (the config's `perception` and `task`) trained as a
# diffusion model with 10% of its labels dropped (the null class).
scenes_genrep_stage0 = dict(
    type='genrep.GenRep', schedule=genrep_schedule, stage=0, label_dropout=0.1)
# The stages' learning rate: warm-up over the first 50 iterations, then the config's decay.
scenes_warmup = dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50)
scenes_poly_decay = dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=False, begin=50)
scenes_cosine_decay = dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=50)

# Stage 1's teacher p(y|x) (Eq. 2-3) on a CPU budget (the paper's chain is T = 200, m = 50,
# k = 2): 10 respaced steps of which the last half run (strength 0.5, from t = 500), burn-in 1,
# thinning 2: 2 kept steps, for K = 4 candidates on 1 of the 8 images of a batch. Temperature 1/3:
# the log-likelihood is averaged over the C = 3 channels. The reading these jobs' figures were
# measured with (README): forward-noised components and their geometric mean; the estimator's
# default is now combine='uniform', which wants its own temperature (docs/decisions.md).
teacher_posterior = dict(
    type='ReverseChainPosterior',
    schedule=dict(type='DiffusionSchedule', scheduler=scheduler, num_inference_steps=10),
    strength=0.5,
    burn_in=1,
    thinning=2,
    components='forward',
    combine='geometric',
    antithetic=False,
    temperature=1 / 3)
distill_loss = dict(type='GenerativeDistillationLoss', loss_weight=1.0)
# Stage 1 from the stage-0 checkpoint: L_percept + L_gen_distil (Eq. 4-5), K = 4 candidates.
scenes_genrep_stage1 = dict(
    stage=1, posterior=teacher_posterior, distill_loss=distill_loss, num_candidates=4,
    distill_images=1)

# Stage 2: semantic-driven generation (Eq. 6-10), the two gradients aligned (Eq. 11-16,
# w_p = 0.7, w_g = 0.3), the semantic denoiser an EMA (m = 0.999) of the unified one.
genrep_stage2 = dict(
    stage=2,
    semantic_noise=dict(hidden_channels=32),
    rep_align=dict(hidden_channels=128),
)
stage2_optim_wrapper = dict(
    type='genrep.GradientAlignOptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.01),
    task_weights=dict(percept=0.7, genera=0.3),
    damping_power=2)
stage2_hooks = [dict(type='genrep.SemanticEMAHook', momentum=0.999)]

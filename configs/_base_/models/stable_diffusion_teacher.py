# What the GenRep stage-1 configs on Stable Diffusion 1.x share: its noise schedule (its
# scheduler/scheduler_config.json: 1000 steps, scaled-linear betas 0.00085..0.012, eps prediction,
# no learned variance, no clipping in latent space) and the paper's teacher chain on it (Sec. 3.2,
# Tables 9, 10 and 16, Algorithm 1): T = 200 respaced steps, burn-in m = 50, thinning k = 2, 75
# Gaussian components over the whole chain (strength 1), forward-noised components and their
# geometric mean (docs/decisions.md); temperature 1/4: the log-likelihood is averaged over the
# latent's C = 4 channels, and tau = 1/C gives the model's exact Bayes posterior.
sd_scheduler = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule='scaled_linear',
    variance_type='fixed_small',
    clip_sample=False)
sd_teacher = dict(
    type='ReverseChainPosterior',
    schedule=dict(type='DiffusionSchedule', scheduler=sd_scheduler, num_inference_steps=200),
    burn_in=50,
    thinning=2,
    strength=1.0,
    # The reading this temperature was set for. The estimator's default, combine='uniform'
    # (measured closer to p(y|x): docs/decisions.md), works on another scale: fit its tau
    # on the checkpoint with tools/analysis_tools/teacher_calibration.py, then switch.
    components='forward',
    combine='geometric',
    antithetic=False,
    temperature=0.25)

# The noise schedule of the LDM checkpoints (CompVis latent-diffusion: celebahq256_ldm.py,
# imagenet256_ldm.py, lsun_church256_ldm.py): LDM's 'linear' schedule, linear in sqrt(beta) from
# 0.0015 to 0.0195 (diffusers' scaled_linear) over 1000 steps; x_0 is not clipped in latent space.
ldm_scheduler = dict(
    num_train_timesteps=1000,
    beta_schedule='scaled_linear',
    beta_start=0.0015,
    beta_end=0.0195,
    clip_sample=False)

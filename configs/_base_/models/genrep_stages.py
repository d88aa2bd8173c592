# The GenRep wrappers that the stage configs on a latent diffusion model share (mmdet's habit: a
# config is its _base_ list plus what differs). Stage 1 fills its model from `genrep_stage1`
# (L_percept + L_gen_distil, Eq. 4-5) and a teacher: on Stable Diffusion `genrep_sd_stage1`
# (stable_diffusion_teacher.py's sd_teacher on SD's schedule, 2 candidate classes of 8 images); on
# a model with its own `scheduler` (LDM, DiT), sd_teacher with that scheduler:
#   posterior=dict(_base_.sd_teacher,
#                  schedule=dict(_base_.sd_teacher.schedule, scheduler=_base_.scheduler))
# (mmengine drops functions from a config, so this cannot be one). Stage 2 adds
# `latent_genrep_stage2` (the new modules at the paper's widths) and their trainable patterns
# `stage2_trainable`, `gradient_align_optim_wrapper` and `semantic_ema_hook`.
_base_ = ['./stable_diffusion_teacher.py']

genrep_stage1 = dict(
    stage=1, distill_loss=dict(type='GenerativeDistillationLoss', loss_weight=1.0))
genrep_sd_stage1 = dict(
    genrep_stage1,
    type='genrep.GenRep',
    schedule=dict(type='DiffusionSchedule', scheduler=_base_.sd_scheduler),
    posterior=_base_.sd_teacher,
    num_candidates=2,
    distill_images=8)
# Stable Diffusion's attention layers (self and cross), trainable in every stage (Algorithm 1,
# lines 8-11).
sd_attention = r'^perception\.backbone\.denoiser\.model\..*\.attn[12]\.'
# The SD teacher's budget on the dense and per-region tasks: one iteration in 8 (the stage configs
# give each share).
teacher_interval_hook = dict(type='genrep.TeacherIntervalHook', interval=8)
# The open-vocabulary detectors' stage-1 hooks (the base config's OpenVocabularyHook restated: a
# list replaces, never merges).
ov_stage1_hooks = [dict(type='genrep.OpenVocabularyHook'), teacher_interval_hook]

# Perception probing in stage 1 on the generation models (the paper gives no schedule): AdamW 1e-3
# (the config's cosine decay over its max_iters).
probe_optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))

# Stage 2: semantic-driven generation (Eq. 6-10) on the stage-1 checkpoint, the two gradients
# aligned (Eq. 11-16: w_p = 0.7, w_g = 0.3, alpha = ((cos + 1) / 2)^2), the semantic denoiser an
# EMA (m = 0.999, Sec. 3.2) of the unified one.
latent_genrep_stage2 = dict(
    stage=2, semantic_noise=dict(hidden_channels=256), rep_align=dict(hidden_channels=2048))
stage2_trainable = [r'^semantic_noise\.', r'^rep_align\.']
gradient_align_optim_wrapper = dict(
    type='genrep.GradientAlignOptimWrapper',
    task_weights=dict(percept=0.7, genera=0.3),
    damping_power=2)
semantic_ema_hook = dict(type='genrep.SemanticEMAHook', momentum=0.999)

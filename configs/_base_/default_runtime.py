# Runtime shared by the classification configs (mmpretrain is the task toolkit, genrep the plugin).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['genrep'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's, plus iter_<n>.pth every iter_interval iterations inside an epoch (a GenRep stage
    # is one epoch: a killed stage resumes from its last 100 iterations at most) and a
    # last_checkpoint relative to the work dir.
    checkpoint=dict(
        type='genrep.CheckpointHook',
        interval=1,
        max_keep_ckpts=2,
        save_best='auto',
        iter_interval=100),
    # Stops at the first non-finite gradient, update or loss, before a checkpoint can hold it.
    finite_check=dict(type='genrep.NonFiniteCheckHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # SIGTERM / SIGUSR1 (a cluster preempting the job): finish the iteration, save it, exit 75.
    preemption=dict(type='genrep.PreemptionHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # gloo where CUDA is absent (genrep.compat)
)
# DDP on the model's own device: the Runner's default passes device_ids=[LOCAL_RANK], which DDP
# refuses for a CPU model; without device_ids a single-device CUDA model is wrapped the same way.
# Unused parameters are expected: a perception loss leaves the denoiser's output layers unused.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel',
    device_ids=None,
    broadcast_buffers=False,
    find_unused_parameters=True)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)

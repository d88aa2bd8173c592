# imagenet256_dit.py (stage 0: DiT-XL/2 class-conditional generation, the diffusion loss and its
# variational bound) sharded across processes with FSDP, for denoisers beyond one GPU's memory:
# mmengine's FlexibleRunner with FSDPStrategy (tools/train.py builds it because of runner_type).
# Each DiT block (~24M parameters) becomes one FSDP unit (size-based auto wrap at 1e7 parameters);
# use_orig_params keeps the frozen VAE's parameters (requires_grad=False) beside the trained ones.
# Checkpoints hold the full, unsharded state dict (gathered on rank 0 and offloaded to the CPU), so
# tools/test.py and the plain Runner read them as they read imagenet256_dit.py's.
# Only the plain OptimWrapper: the gradient alignment of stage 2 needs the whole task gradients and
# refuses sharded ones (genrep/engine/optim_wrappers.py; tools/train.py refuses the config first).
# The generation evaluation hook samples through the bare denoiser, outside FSDP's forward, so it is
# off here: evaluate a checkpoint with tools/test.py on imagenet256_dit.py.
# On CPU processes (no CUDA) set strategy.model_wrapper.device_id='cpu' and a full state dict without
# offload_to_cpu (tests/data/configs/fmnist_genrep_tiny_stage0_fsdp.py does; genrep's config
# checks say so otherwise).
_base_ = ['./imagenet256_dit.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        use_orig_params=True,
        sharding_strategy='FULL_SHARD',
        auto_wrap_policy=dict(type='genrep.size_based_auto_wrap_policy', min_num_params=int(1e7))),
    state_dict_cfg='full')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0))
custom_hooks = []

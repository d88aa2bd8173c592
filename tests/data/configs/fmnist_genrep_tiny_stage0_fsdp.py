# GenRep stage 0 (generation) with the tiny UNet, sharded by FSDP on CPU processes (gloo): the smoke
# test of configs/genrep/imagenet256_dit_fsdp.py's setup. On CPU, FSDP needs device_id='cpu' (else
# "FSDP needs a non-CPU accelerator device") and a full state dict gathered without
# offload_to_cpu (with it, torch 2.13's FSDP1 segfaults cloning the gathered CPU tensors).
_base_ = ['../../../configs/genrep/fmnist_genrep_stage0.py', './tiny_unet.py']
model = dict(
    perception=dict(
        backbone=dict(denoiser=dict(config={{_base_.tiny_unet}})),
        head=dict(in_channels=32),
    ))
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=[
        dict(type='mmcv.Pad', size=(32, 32), pad_val=0),
        dict(type='PackInputs'),
    ]))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.05, momentum=0.9))

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        device_id='cpu',
        use_orig_params=True,
        auto_wrap_policy=dict(type='genrep.size_based_auto_wrap_policy', min_num_params=2000)),
    state_dict_cfg=dict(
        state_dict_type='FULL_STATE_DICT',
        state_dict_config=dict(type='FullStateDictConfig', offload_to_cpu=False, rank0_only=True),
        optim_state_dict_config=dict(
            type='FullOptimStateDictConfig', offload_to_cpu=False, rank0_only=True)))

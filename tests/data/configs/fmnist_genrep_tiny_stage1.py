# GenRep stage 1 with a tiny UNet, a 4-step chain and single-process loading, for tests of the tools.
_base_ = ['../../../configs/genrep/fmnist_genrep_stage1.py']
model = dict(
    perception=dict(
        # the main job's stage 1 reads the shipped denoiser; the tests build the tiny one from
        # scratch: the main job's UNet layout with tiny_unet.py's widths
        backbone=dict(denoiser=dict(
            _delete_=True,
            type='UNet2DDenoiser',
            config=dict(
                sample_size=32,
                in_channels=1,
                out_channels=2,
                layers_per_block=1,
                down_block_types=('DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D'),
                up_block_types=('AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'),
                num_class_embeds=11,
                block_out_channels=(8, 16, 16, 32),  # tiny_unet.py's widths
                norm_num_groups=4,
                attention_head_dim=8))),
        head=dict(in_channels=32),
    ),
    # the main job's teacher (Li et al.'s denoising error) at 4 timesteps instead of 20, at
    # temperature 1 (the main job's is fitted to the shipped weights: on random ones it turns the
    # posterior one-hot)
    posterior=dict(schedule=dict(num_inference_steps=4), temperature=1.0),
    distill_images=2,
)
# the teacher on every iteration (the main job's runs it on one in 32), frozen as the main job's
custom_hooks = [dict(type='genrep.SemanticEMAHook', momentum=1.0)]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
load_from = None  # the tests train stage 1 from scratch

# GenRep stage 0 on the embedded scenes' detection job: generative pretraining of
# scenes_ovdet_unet.py's pixel-space UNet2DModel (noise MSE), each scene conditioned on the base
# class of its largest box (genrep.DetectionAdapter), 10% dropped to the null class, so that the
# class tokens the region teacher of stage 1 reads are trained. The paper starts from a pretrained
# LDM/DiT; none exists for these scenes, so this stage makes one. Stage 1 loads it
# (scenes_ovdet_genrep_stage1.py, and its no-distillation control).
_base_ = ['./scenes_ovdet_unet.py', '../_base_/models/scenes_genrep.py']

model = dict(_base_.scenes_genrep_stage0, _delete_=True, perception=_base_.model,
             task=dict(type='DetectionAdapter', generation_condition='largest'))
max_iters = 400
param_scheduler = [_base_.scenes_warmup, dict(_base_.scenes_cosine_decay, end=max_iters)]
# Nothing of perception trains in stage 0: no validation, no drawings.
train_cfg = dict(max_iters=max_iters, val_begin=10**9, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(interval=max_iters),
    visualization=dict(draw=False))

# GenRep stage 0 on the embedded depth scenes: generative pretraining of scenes_depth_unet.py's
# pixel-space UNet2DModel (noise MSE), each scene conditioned on its scene class (the super-category
# of its nearest object, nyu/classes.json; genrep.DepthAdapter), 10% dropped to the null class. The
# paper starts from a pretrained LDM/DiT; none exists for these scenes, so this stage makes one.
# Stage 1 loads it (scenes_depth_genrep_stage1.py and its no-distillation control).
_base_ = ['./scenes_depth_unet.py', '../_base_/models/scenes_genrep.py']

model = dict(_base_.scenes_genrep_stage0, _delete_=True, perception=_base_.model,
             task=dict(type='DepthAdapter', generation_condition='scene'))
# Nothing of perception trains in stage 0: no validation, no depth maps.
train_cfg = dict(val_begin=10**9)
default_hooks = dict(visualization=dict(draw=False))

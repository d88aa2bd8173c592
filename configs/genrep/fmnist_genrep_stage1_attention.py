# GenRep stage 1 on Fashion-MNIST as Algorithm 1 writes it: every parameter of the denoiser frozen
# but its attention blocks (the AttnDownBlock2D, mid-block and AttnUpBlock2D attentions, 10% of the
# UNet's parameters), the classification head trained. The teacher reads the same denoiser, which
# can now move only through those blocks. Otherwise the main job's stage 1 (the literal chain
# teacher, one epoch from the stage-0 checkpoint); `--cfg-options model.posterior=None` is the same
# schedule without L_gen_distil. Figures in the README (what the distillation does here).
_base_ = ['./fmnist_genrep_stage1.py']

model = dict(trainable=[r'^perception\.backbone\.denoiser\.model\..*\.attentions\.',
                        r'^perception\.head\.'])

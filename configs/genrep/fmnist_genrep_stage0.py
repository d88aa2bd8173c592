# GenRep stage 0 on Fashion-MNIST: generative pretraining of the class-conditional denoiser (noise MSE
# plus the variational-bound term of its learned variance). The paper starts from a pretrained
# LDM/DiT; with no such checkpoint for the embedded data, this stage makes one. Stage 1 loads it.
_base_ = ['./fmnist_genrep_stage1.py']

model = dict(stage=0, vlb_weight=1.0, label_dropout=0.1)
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=100)  # no perception to validate
val_dataloader = None
val_cfg = None
val_evaluator = None
default_hooks = dict(checkpoint=dict(save_best=None))
load_from = None

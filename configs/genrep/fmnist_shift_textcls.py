# The out-of-distribution test the ObjectNet protocol implies, on embedded data: a model trained on
# Fashion-MNIST (fmnist_unet_textcls.py, or any Fashion-MNIST classifier config given to
# --cfg-options) tested on Fashion-MNIST-Shift, the same 10,000 test images rotated (+-45 degrees),
# rescaled (0.7-1) and laid on real background photos
# (tools/dataset_converters/make_fmnist_shift.py; `make ood` writes data/fmnist_shift).
#   python tools/test.py configs/genrep/fmnist_shift_textcls.py CKPT
_base_ = ['./fmnist_unet_textcls.py']

shift_root = 'data/fmnist_shift'
val_dataloader = dict(dataset=dict(data_root=shift_root))
test_dataloader = val_dataloader

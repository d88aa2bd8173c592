# Main job (perception only): a diffusers UNet as the backbone of an mmpretrain classifier,
# trained on the 60,000 Fashion-MNIST training images and evaluated (top-1) on the 10,000 test images.
_base_ = [
    '../_base_/models/unet_fmnist_cls.py',
    '../_base_/datasets/fashion_mnist.py',
    '../_base_/schedules/fmnist_cls.py',
    '../_base_/default_runtime.py',
]

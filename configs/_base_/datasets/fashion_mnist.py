# Fashion-MNIST from Debian's dataset-fashion-mnist package: 60,000 train / 10,000 test images,
# 28x28 grayscale, padded to 32x32 so that a 4-level UNet halves it three times.
dataset_type = 'genrep.FashionMNIST'
data_root = '/usr/share/datasets/fashion-mnist'

data_preprocessor = dict(
    num_classes=10,
    mean=[127.5],  # to [-1, 1], the range diffusion models work in
    std=[127.5],
    to_rgb=False,
)

train_pipeline = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmcv.Pad', size=(32, 32), pad_val=0),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='mmcv.Pad', size=(32, 32), pad_val=0),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', pipeline=test_pipeline),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator

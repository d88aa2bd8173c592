# Out-of-distribution classification on ObjectNet (Sec. 4, Table 1, paper A.4): the classifier is
# trained on ImageNet-1k and tested on the 113 ObjectNet classes that overlap it, each image scored
# by the cosine similarity of its pooled feature to the text embeddings of the class names
# (genrep.TextEmbeddingClsHead: a linear projection of the pooled deepest decoder feature, a learned
# logit scale), so the test vocabulary is ObjectNet's own names. OpenVocabularyHook gives the head
# ImageNet's 1000 names in training and ObjectNet's 113 at test (genrep.ObjectNet, the released
# objectnet-1.0 folder with its mappings/). The backbone and recipe are cub_ldm.py's (SD UNet + VAE
# from a local directory, AdamW 1e-3, weight decay 0.05, batch 256, 50 epochs, random crop + flip)
# at 256 px (ImageNet's usual 224 rounded to the UNet's multiple of 64). Text embeddings: a local
# CLIP text model (`clip_text_model`, a transformers CLIPTextModelWithProjection + CLIPTokenizer
# directory), cached on disk. `tools/test.py configs/genrep/objectnet_ldm.py <ckpt>` is the
# ObjectNet evaluation of a checkpoint trained with this config.
_base_ = ['./cub_ldm.py']

clip_text_model = 'checkpoints/clip-vit-base-patch16'
crop = 256
model = dict(
    backbone=dict(
        denoiser=dict(num_classes=1000),
        class_prompts=dict(class_names='mmpretrain.ImageNet')),
    head=dict(
        _delete_=True,
        type='genrep.TextEmbeddingClsHead',
        in_channels=1280,
        class_names='mmpretrain.ImageNet',
        text_encoder=dict(type='genrep.CLIPTextEncoder', model_dir=clip_text_model),
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
data_preprocessor = dict(num_classes=None)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=crop),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=crop * 8 // 7, edge='short'),
    dict(type='CenterCrop', crop_size=crop),  # also drops ObjectNet's 1-px border
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageNet',
        data_root='data/imagenet',
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='genrep.ObjectNet',
        data_root='data/objectnet-1.0',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
custom_hooks = [dict(type='genrep.OpenVocabularyHook')]

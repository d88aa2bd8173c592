# Open-vocabulary semantic segmentation (Sec. 4, Table 3, paper A.4): trained on COCO-Stuff 164k
# (171 classes), tested on ADE20K-150, whose names it never trained on, as mmseg 1.2's own
# open-vocabulary SAN configs do. The closed-set ade20k_ldm.py model with one change: Mask2Former's
# query classifier scores each class query by cosine similarity to the text embeddings of the class
# names (genrep.OpenVocabMask2FormerHead, with a learned no-object embedding), and
# OpenVocabularyHook gives the head each phase's dataset names (COCO-Stuff's in training,
# ADE20K's at validation and test). Text embeddings come from a local CLIP text model
# (`clip_text_model`: a transformers CLIPTextModelWithProjection + CLIPTokenizer directory, e.g. the
# text_encoder of openai/clip-vit-base-patch16 saved with save_pretrained); they are cached on disk.
_base_ = ['./ade20k_ldm.py']

clip_text_model = 'checkpoints/clip-vit-base-patch16'
model = dict(
    # class tokens of COCO-Stuff's classes, from SD's text context of their names
    backbone=dict(denoiser=dict(num_classes=171),
                  class_prompts=dict(class_names='mmseg.COCOStuffDataset')),
    decode_head=dict(
        type='genrep.OpenVocabMask2FormerHead',
        num_classes=None,
        class_names='mmseg.COCOStuffDataset',
        text_encoder=dict(type='genrep.CLIPTextEncoder', model_dir=clip_text_model)))

# COCO-Stuff 164k in mmseg's layout (data/coco_stuff164k: images/train2017, annotations/train2017
# *_labelTrainIds.png with 255 ignored; tools/dataset_converters/coco_stuff164k.py of mmseg makes
# them), through the same 768-crop pipeline; its labels need no zero reduction.
coco_train_pipeline = [
    dict(step, reduce_zero_label=False) if step['type'] == 'LoadAnnotations' else step
    for step in _base_.train_pipeline
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='COCOStuffDataset',
        data_root='data/coco_stuff164k',
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=coco_train_pipeline))
custom_hooks = [dict(type='genrep.OpenVocabularyHook')]

# Paper Sec. 4 "Training": 80k iterations on COCO-Stuff for open-vocabulary segmentation (160k on
# ADE20K for the closed set, the base's); mmseg's PolyLR (power 0.9) over the shorter schedule,
# validation and checkpoints every 5k as the base.
max_iters = 80000
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)

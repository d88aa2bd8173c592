# Open-vocabulary detection on LVIS v1 (Sec. 4, OV-LVIS: APr on the 337 rare classes held out of
# training, APc / APf / AP) with the latent-diffusion Faster R-CNN of ov_coco_ldm.py (SD UNet + VAE
# backbone, FPN, RPN, RoIs scored by cosine to the CLIP text embeddings of the class names with a
# learned background): mmdet's LVISMetric on LVISV1Dataset's 1203 names at test. Training follows
# ViLD's and BARON's protocol (paper A.3: "trained on 461 common and 405 frequent classes"):
# * the training file annotations/lvis_v1_train_norare.json has no box of a rare class, and the
#   TRAINING VOCABULARY is the 866 common and frequent names (genrep.LVISV1VocabularyDataset, from
#   annotations/lvis_v1_categories.json; both files from tools/dataset_converters/
#   lvis_remove_rare.py): the rare names are no column of the classifier in training (not
#   background-only columns), and OpenVocabularyHook hands the head all 1203 names at test;
# * repeat-factor sampling (Gupta et al., 2019): mmdet / mmengine's ClassBalancedDataset with
#   oversample_thr 1e-3, each image repeated ceil(max over its classes of max(1, sqrt(1e-3 /
#   f_c))) times, f_c the fraction of training images holding class c (detectron2's and BARON's
#   LVIS sampler, which rounds stochastically where this one takes the ceiling).
# The denoiser's class table (the classes p(x|y) of the GenRep teacher and generation read) is the
# same 866-name training vocabulary. Paper schedule: 80k iterations, batch 16, Adam 2e-3, weight
# decay 1e-4.
_base_ = ['./ov_coco_ldm.py']

data_root = 'data/lvis_v1/'
# The training vocabulary: the dataset's classes, read from the category list (no annotation file
# is read to build the model).
train_vocabulary = dict(
    type='genrep.LVISV1VocabularyDataset',
    data_root=data_root,
    ann_file='annotations/lvis_v1_train_norare.json',
    categories_file='annotations/lvis_v1_categories.json',
    frequencies=('c', 'f'))
model = dict(
    backbone=dict(
        # 866 (461 common + 405 frequent names of LVIS v1): class_prompts' names give the count
        denoiser=dict(num_classes=None),
        class_prompts=dict(class_names=dict(train_vocabulary, _delete_=True))),
    roi_head=dict(bbox_head=dict(class_names=dict(train_vocabulary, _delete_=True))),
    # LVIS evaluates up to 300 detections an image
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ClassBalancedDataset',
        oversample_thr=1e-3,
        dataset=dict(
            train_vocabulary,
            data_prefix=dict(img=''),  # file names come from each image's coco_url (train2017/...)
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline={{_base_.train_pipeline}})))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LVISV1Dataset',
        data_root=data_root,
        ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='LVISMetric', metric='bbox',
                     ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = val_evaluator

max_iters = 80000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.8), int(max_iters * 0.9)], gamma=0.1)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 8)
default_hooks = dict(checkpoint=dict(interval=max_iters // 8))

# Open-vocabulary detection on LVIS v1 (Sec. 4, OV-LVIS: APr on the 337 rare classes held out of
# training, APc / APf / AP) with the latent-diffusion Faster R-CNN of ov_coco_ldm.py (SD UNet + VAE
# backbone, FPN, RPN, RoIs scored by cosine to the CLIP text embeddings of the class names with a
# learned background): mmdet's LVISV1Dataset and LVISMetric. Training reads
# annotations/lvis_v1_train_norare.json (tools/dataset_converters/lvis_remove_rare.py: every
# annotation of a 'r' category removed, by each category's `frequency` field). The vocabulary is
# LVIS's 1203 names in training too: the category list of the file is kept whole so that mmdet's
# LVISV1Dataset gives train and val the same labels; rare classes have no box to train on (their
# names are background-only columns in training, a looser protocol than ViLD's 866-name training
# vocabulary). Paper schedule: 80k iterations, batch 16, Adam 2e-3, weight decay 1e-4.
_base_ = ['./ov_coco_ldm.py']

data_root = 'data/lvis_v1/'
model = dict(
    backbone=dict(
        denoiser=dict(num_classes=1203),
        class_prompts=dict(class_names='mmdet.LVISV1Dataset')),
    roi_head=dict(bbox_head=dict(class_names='mmdet.LVISV1Dataset')),
    # LVIS evaluates up to 300 detections an image
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LVISV1Dataset',
        data_root=data_root,
        ann_file='annotations/lvis_v1_train_norare.json',
        data_prefix=dict(img=''),  # file names come from each image's coco_url (train2017/...)
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.train_pipeline}}))
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

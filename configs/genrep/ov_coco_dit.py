# Open-vocabulary detection on COCO (Sec. 4, OV-COCO; Table 5, the DiT row) with a Diffusion
# Transformer backbone: ov_coco_ldm.py (Faster R-CNN, FPN, RPN, RoIs scored by cosine to the CLIP
# text embeddings of the class names, trained on the 48 base classes, tested on all 65 with
# OVCocoMetric) with genrep.DiTDenoiser over its AutoencoderKL in place of Stable Diffusion's UNet.
# The backbone, its fixed 512 x 512 input and its four feature levels:
# configs/_base_/models/dit_xl2_512_detector.py. The schedule is ov_coco_ldm.py's (40k iterations,
# batch 16, Adam 2e-3, weight decay 1e-4).
_base_ = ['./ov_coco_ldm.py', '../_base_/models/dit_xl2_512_detector.py']

# The local weights every build checks (validate_config) and the tests name: the DiT's, not SD's.
pretrained = _base_.dit_pretrained
model = dict(data_preprocessor=dict(pad_size_divisor=_base_.dit_image_size),
             backbone=dict(_base_.dit_backbone, _delete_=True),
             neck=dict(in_channels=_base_.dit_feature_channels))

train_dataloader = dict(dataset=dict(pipeline={{_base_.dit_train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.dit_test_pipeline}}))
test_dataloader = val_dataloader

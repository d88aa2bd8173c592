# Open-vocabulary detection on LVIS v1 (Sec. 4, OV-LVIS: APr / APc / APf / AP; Table 5, the DiT row)
# with a Diffusion Transformer backbone: ov_lvis_ldm.py (Faster R-CNN trained on the 866 common
# and frequent names with repeat-factor sampling, tested on the 1203, LVISMetric; 80k iterations)
# with genrep.DiTDenoiser over its AutoencoderKL in place of Stable Diffusion's UNet, as
# ov_coco_dit.py does for COCO
# (configs/_base_/models/dit_xl2_512_detector.py: the backbone, 512 x 512 inputs, four levels).
_base_ = ['./ov_lvis_ldm.py', '../_base_/models/dit_xl2_512_detector.py']

# The local weights every build checks (validate_config) and the tests name: the DiT's, not SD's.
pretrained = _base_.dit_pretrained
model = dict(data_preprocessor=dict(pad_size_divisor=_base_.dit_image_size),
             backbone=dict(_base_.dit_backbone, _delete_=True),
             neck=dict(in_channels=_base_.dit_feature_channels))

train_dataloader = dict(dataset=dict(dataset=dict(pipeline={{_base_.dit_train_pipeline}})))
val_dataloader = dict(dataset=dict(pipeline={{_base_.dit_test_pipeline}}))
test_dataloader = val_dataloader

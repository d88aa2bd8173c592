# GenRep stage 1 (Sec. 3.3) on OV-LVIS around the Faster R-CNN of ov_lvis_ldm.py: the detector's
# losses + L_gen_distil per region (genrep.DetectionAdapter), the teacher pooled in each matched
# ground-truth box over K candidates of the non-rare classes present (rare classes have no boxes in
# the training file, so they are never a box's class). The chain and budget of
# ov_coco_ldm_genrep_stage1.py (T = 200, m = 50, k = 2; K = 8, 1 image of each GPU's 2).
_base_ = ['./ov_lvis_ldm.py', '../_base_/models/stable_diffusion_teacher.py']

model = dict(
    _delete_=True,
    type='genrep.GenRep',
    perception={{_base_.model}},
    task=dict(type='DetectionAdapter'),
    stage=1,
    schedule=dict(type='DiffusionSchedule', scheduler={{_base_.sd_scheduler}}),
    posterior={{_base_.sd_teacher}},
    distill_loss=dict(type='GenerativeDistillationLoss', loss_weight=1.0),
    num_candidates=8,
    distill_images=1,
    trainable=[
        r'^perception\.backbone\.denoiser\.model\..*\.attn[12]\.',
        r'^perception\.(neck|rpn_head|roi_head)\.',
    ],
)

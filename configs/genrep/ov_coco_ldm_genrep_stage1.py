# GenRep stage 1 (Sec. 3.3) on OV-COCO around the Faster R-CNN of ov_coco_ldm.py: perception only,
# L_percept = the detector's losses + L_gen_distil (Eq. 4-5) per region (genrep.DetectionAdapter):
# for each RoI matched to a ground-truth box, the teacher p(y|box) is the dense log-likelihood of
# the class-conditioned reverse chain of the same SD UNet (Eq. 2) averaged inside the box
# (RoIAlign), then Bayes (Eq. 3), over K candidates (the image's box classes, then the RoI head's
# top scores), base classes only (the training vocabulary: novel names are never distilled).
#
# Chain (paper Sec. 3.2, Tables 9, 10 and 16, Algorithm 1): T = 200 reverse steps, burn-in m = 50,
# thinning k = 2, 75 Gaussian components per class, the estimator's default reading
# (docs/decisions.md). Temperature 1/4: the log-likelihood is averaged over the latent's C = 4
# channels at each location. Budget (the paper gives none): K = 8 classes per image (COCO images
# hold ~3 base classes), 1 of each GPU's 2 images. Trainable (Algorithm 1): the UNet's attention
# layers and the FPN, RPN and RoI head; the rest of the UNet and the VAE stay frozen.
_base_ = ['./ov_coco_ldm.py', '../_base_/models/stable_diffusion_teacher.py']

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

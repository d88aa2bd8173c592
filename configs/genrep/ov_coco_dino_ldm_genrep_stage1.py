# GenRep stage 1 (Sec. 3.3) on OV-COCO around the DINO of ov_coco_dino_ldm.py: perception only,
# L_percept = DINO's losses + L_gen_distil (Eq. 4-5) per matched query
# (genrep.QueryDetectionAdapter): for each query of the last decoder layer that DINO's Hungarian
# assigner matches to a ground-truth box, the teacher p(y|box) is the dense log-likelihood of the
# class-conditioned reverse chain of the same SD UNet (Eq. 2) averaged inside the box (RoIAlign),
# then Bayes (Eq. 3), over K candidates (the image's box classes, then the queries' top scores),
# base classes only. The chain and budget are ov_coco_ldm_genrep_stage1.py's (T = 200, m = 50,
# k = 2; K = 8, 1 image of each GPU's 2). Trainable (Algorithm 1): the UNet's attention layers and
# everything of DINO outside the backbone (neck, encoder, decoder, queries, head, denoising
# label table); the rest of the UNet and the VAE stay frozen.
_base_ = ['./ov_coco_dino_ldm.py', '../_base_/models/stable_diffusion_teacher.py']

model = dict(
    _delete_=True,
    type='genrep.GenRep',
    perception={{_base_.model}},
    task=dict(type='QueryDetectionAdapter'),
    stage=1,
    schedule=dict(type='DiffusionSchedule', scheduler={{_base_.sd_scheduler}}),
    posterior={{_base_.sd_teacher}},
    distill_loss=dict(type='GenerativeDistillationLoss', loss_weight=1.0),
    num_candidates=8,
    distill_images=1,
    trainable=[
        r'^perception\.backbone\.denoiser\.model\..*\.attn[12]\.',
        r'^perception\.(?!backbone\.)',
    ],
)

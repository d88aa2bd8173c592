# GenRep stage 1 (Sec. 3.3) on OV-COCO around the DINO of ov_coco_dino_ldm.py: perception only,
# L_percept = DINO's losses + L_gen_distil (Eq. 4-5) per matched query
# (genrep.QueryDetectionAdapter): for each query of the last decoder layer that DINO's Hungarian
# assigner matches to a ground-truth box, the teacher p(y|box) is the dense log-likelihood of the
# class-conditioned reverse chain of the same SD UNet (Eq. 2) averaged inside the box (RoIAlign),
# then Bayes (Eq. 3), over K candidates (the image's box classes, then the queries' top scores),
# base classes only. The teacher and its budget are ov_coco_ldm_genrep_stage1.py's (below).
# Trainable (Algorithm 1): the UNet's attention layers and everything of DINO outside the
# backbone (neck, encoder, decoder, queries, head, denoising label table); the rest of the UNet
# and the VAE stay frozen.
_base_ = ['./ov_coco_dino_ldm.py', '../_base_/models/genrep_stages.py']

model = dict(_base_.genrep_sd_stage1, _delete_=True, perception=_base_.model,
             task=dict(type='QueryDetectionAdapter'),
             trainable=[_base_.sd_attention, r'^perception\.(?!backbone\.)'])
# Teacher budget (issue 23, docs/paper_cost.md): <= 10% of the stage's FLOPs, the paper's +10.1%
# (Table 15). The teacher of configs/_base_/models/stable_diffusion_teacher.py (S = 2 denoiser
# calls a class) for K = 2 classes of 8 images (one a GPU) on one iteration in 8
# (TeacherIntervalHook): 8.4% of the FLOPs, spread over every GPU. The paper's chain as
# written: that file's sd_teacher_paper_chain.
custom_hooks = _base_.ov_stage1_hooks

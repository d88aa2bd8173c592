# GenRep stage 1 (Sec. 3.3) on NYUv2 around the depth estimator of nyuv2_ldm.py. Depth has no class
# posterior, so generative distillation goes through the scene: an auxiliary scene-class head
# (genrep.SceneClassHead on the deepest UNet feature, mmseg's 27 NYUv2 scene classes from the
# folder names) learns the scene by cross-entropy and is pulled towards the teacher p(scene|x)
# (Eq. 2-4, image level) of the same SD UNet's scene-conditioned reverse chain (the class table
# starts from SD's text context of 'a photograph of a <scene>.'); the depth head shares the
# features this shapes (genrep.DepthAdapter). L_percept = SiLog + scene cross-entropy +
# L_gen_distil (Eq. 5).
#
# Teacher as the ADE20K configs' (configs/_base_/models/stable_diffusion_teacher.py, 2 kept steps);
# temperature 1/4 (the image log-likelihood is averaged over the latent's C = 4 channels);
# candidates the true scene and the head's top scores, the budget at the end of this file.
# Trainable (Algorithm 1, lines 8-11): the UNet's attention layers and the heads.
_base_ = ['./nyuv2_ldm.py', '../_base_/models/genrep_stages.py']

model = dict(
    _base_.genrep_sd_stage1,
    _delete_=True,
    # nyuv2_ldm.py's estimator with the scene-class head as its auxiliary head.
    perception=dict(
        type='DepthEstimator',
        data_preprocessor={{_base_.data_preprocessor}},
        backbone={{_base_.model.backbone}},
        decode_head={{_base_.model.decode_head}},
        auxiliary_head=dict(type='genrep.SceneClassHead', in_channels=1280,
                            num_classes={{_base_.num_classes}}),
        train_cfg=dict(),
        test_cfg={{_base_.model.test_cfg}}),
    task=dict(type='DepthAdapter', generation_condition='scene'),
    num_candidates=1,
    trainable=[_base_.sd_attention, r'^perception\.decode_head\.',
               r'^perception\.auxiliary_head\.'],
)
# Teacher budget (issue 23, docs/paper_cost.md): <= 10% of the stage's FLOPs, the paper's +10.1%
# (Table 15). The teacher of configs/_base_/models/stable_diffusion_teacher.py (S = 2 denoiser
# calls a class) for K = 2 classes of 8 images (one a GPU) on one iteration in 8
# (TeacherIntervalHook): 9.2% of the FLOPs, spread over every GPU. The paper's chain as
# written: that file's sd_teacher_paper_chain.
custom_hooks = [_base_.teacher_interval_hook]

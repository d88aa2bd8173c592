# GenRep stage 1 (Sec. 3.3) on NYUv2 around the depth estimator of nyuv2_ldm.py. Depth has no class
# posterior, so generative distillation goes through the scene: an auxiliary scene-class head
# (genrep.SceneClassHead on the deepest UNet feature, mmseg's 27 NYUv2 scene classes from the
# folder names) learns the scene by cross-entropy and is pulled towards the teacher p(scene|x)
# (Eq. 2-4, image level) of the same SD UNet's scene-conditioned reverse chain (the class table
# starts from SD's text context of 'a photograph of a <scene>.'); the depth head shares the
# features this shapes (genrep.DepthAdapter). L_percept = SiLog + scene cross-entropy +
# L_gen_distil (Eq. 5).
#
# Chain as the ADE20K configs (paper Sec. 3.2, Tables 9, 10 and 16): T = 200 reverse steps, burn-in
# m = 50, thinning k = 2, 75 kept steps, the estimator's default reading; temperature 1/4 (the
# image log-likelihood is averaged over the latent's C = 4 channels). Budget (the paper gives
# none): K = 8 candidate scenes per image (the true one and the head's top scores) for 1 of each
# GPU's 2 images. Trainable (Algorithm 1, lines 8-11): the UNet's attention layers and the heads.
_base_ = ['./nyuv2_ldm.py', '../_base_/models/stable_diffusion_teacher.py']

model = dict(
    _delete_=True,
    type='genrep.GenRep',
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
    stage=1,
    schedule=dict(type='DiffusionSchedule', scheduler={{_base_.sd_scheduler}}),
    posterior={{_base_.sd_teacher}},
    distill_loss=dict(type='GenerativeDistillationLoss', loss_weight=1.0),
    num_candidates=8,
    distill_images=1,
    trainable=[
        r'^perception\.backbone\.denoiser\.model\..*\.attn[12]\.',
        r'^perception\.decode_head\.',
        r'^perception\.auxiliary_head\.',
    ],
)

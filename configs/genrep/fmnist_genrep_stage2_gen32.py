# GenRep stage 2 on Fashion-MNIST with the generation budget of issue 13: the generation loss
# (Eq. 10, with its two no-gradient passes of the semantic denoiser) on the first 32 images of each
# batch of 128, each weighted as in the full batch; perception and the teacher as in
# fmnist_genrep_stage2.py. benchmarks/stage2_step.py: 2.07x the perception-only step with the
# forward-noised teacher, against 5.28x for the full stage 2. Measured from the same stage-1
# checkpoint (one seed): top-1 87.05 vs 87.16, ECE 0.0260 vs 0.0265, CAS 0.515 vs 0.639, FID 673.4
# vs 665.7 (README): perception unchanged, generation weaker.
_base_ = ['./fmnist_genrep_stage2.py']

model = dict(generation_images=32)

# GenRep stage 2 on Fashion-MNIST with the generation budget of issue 13: the generation loss
# (Eq. 10, with its two no-gradient passes of the semantic denoiser) on the first 32 images of each
# batch of 128, each weighted as in the full batch; perception and the teacher as in
# fmnist_genrep_stage2.py. benchmarks/stage2_step.py: 2.07x the perception-only step with the
# forward-noised teacher, against 5.28x for the full stage 2. What it does to top-1, ECE and FID
# has not been measured yet (issue 13).
_base_ = ['./fmnist_genrep_stage2.py']

model = dict(generation_images=32)

# Two commands do everything on a fresh Debian machine with Python 3.11 (as root):
#   make main   installs the stack (first time only), trains and evaluates the main job: GenRep on
#               the embedded Fashion-MNIST (stage 0 -> 1 -> 2, then the test with FID/IS/CAS)
#   make test   installs the stack (first time only), runs the test suite
PYTHON ?= python3
# The newest checkpoint of a work dir $(1) (last_checkpoint holds its name).
last_ckpt = "$(1)/$$(basename "$$(cat $(1)/last_checkpoint)")"
# A GenRep chain on the scenes: stage 0 of configs $(1)0.py into work_dirs/$(2)0, then each stage of
# $(3) trained from $(1)<stage>.py into work_dirs/$(2)<stage> and tested there (test/).
genrep_chain = $(PYTHON) tools/train.py $(1)0.py --work-dir work_dirs/$(2)0 --resume && \
	for stage in $(3); do \
		dir=work_dirs/$(2)$$stage; \
		$(PYTHON) tools/train.py $(1)$$stage.py --work-dir $$dir --resume || exit 1; \
		$(PYTHON) tools/test.py $(1)$$stage.py $(call last_ckpt,$$dir) \
			--work-dir $$dir/test || exit 1; \
	done

.PHONY: install main pretrain perception compare few-labels ood scenes scenes-data seg seg-genrep ovseg ovdet depth depth-genrep suite test test-slow paper-smoke

install:
	PYTHON=$(PYTHON) bash tools/install.sh

# GenRep on the embedded data, from the shipped pretrained denoiser (checkpoints/fmnist_denoiser,
# `make pretrain`): the feature net of FID/CAS (cached), perception with generative distillation
# (stage 1, validated with top-1 and ECE), joint training with gradient alignment (stage 2), then
# the test of stage 2: top-1, ECE and its reliability diagram, FID, IS and CAS of class-conditional
# samples and their grid.
GENREP = configs/genrep/fmnist_genrep_stage
# Each stage resumes its own work dir: a run that was stopped goes on where it stopped, a finished one
# is kept (delete work_dirs/ to train again from scratch).
main: install
	$(PYTHON) tools/analysis_tools/train_feature_net.py
	$(PYTHON) tools/train.py $(GENREP)1.py --work-dir work_dirs/fmnist_genrep_stage1 --resume
	$(PYTHON) tools/train.py $(GENREP)2.py --work-dir work_dirs/fmnist_genrep_stage2 --resume
	$(PYTHON) tools/test.py $(GENREP)2.py work_dirs/fmnist_genrep_stage2/epoch_1.pth \
		--work-dir work_dirs/fmnist_genrep_stage2/test

# Generative pretraining of the main job's denoiser (configs/genrep/fmnist_genrep_pretrain.py: 16
# epochs, weight EMA, cosine schedule, label dropout), exported (EMA weights) as the diffusers
# folder checkpoints/fmnist_denoiser, which the repository ships (docs/pretraining.md). `make
# pretrain` remakes it: it resumes its own work dir, or starts from scratch (about 2.2 h on one core).
PRETRAIN = configs/genrep/fmnist_genrep_pretrain.py
PRETRAIN_DIR = work_dirs/fmnist_genrep_pretrain
pretrain: install
	$(PYTHON) tools/train.py $(PRETRAIN) --work-dir $(PRETRAIN_DIR) --resume
	$(PYTHON) tools/model_converters/export_denoiser.py $(PRETRAIN) \
		$(call last_ckpt,$(PRETRAIN_DIR)) checkpoints/fmnist_denoiser

# The perception-only baseline: the same UNet backbone, cross-entropy alone, two epochs.
PERCEPTION = configs/genrep/fmnist_unet_cls.py
perception: install
	$(PYTHON) tools/train.py $(PERCEPTION) --work-dir work_dirs/fmnist_unet_cls --resume
	$(PYTHON) tools/test.py $(PERCEPTION) $(call last_ckpt,work_dirs/fmnist_unet_cls) \
		--work-dir work_dirs/fmnist_unet_cls/test

# Distillation with few labels: the main job's stage 1 (from the shipped denoiser, its teacher
# frozen there) on 5,000 labelled images for 10 epochs, with L_gen_distil at weight 1 and 0.5, and
# without it (seed 0).
FEW = configs/genrep/fmnist_genrep_stage1_5k
few-labels: install
	$(PYTHON) tools/train.py $(FEW).py --work-dir work_dirs/fmnist_genrep_stage1_5k --resume
	$(PYTHON) tools/train.py $(FEW)_frozen_teacher.py \
		--work-dir work_dirs/fmnist_genrep_stage1_5k_frozen_teacher --resume
	$(PYTHON) tools/train.py $(FEW)_nodistil.py \
		--work-dir work_dirs/fmnist_genrep_stage1_5k_nodistil --resume

# The fair comparison (issue 26): perception-only from scratch (`make perception`), perception-only
# from the shipped denoiser, and GenRep stages 1-2 from it, seeds 0, 1, 2, each tested on
# Fashion-MNIST (top-1, ECE, confidence gap) and Fashion-MNIST-Shift (top-1), with its training wall
# time; LABELS=5000 for the few-label version (tools/analysis_tools/fair_comparison.py).
compare: install
	test -d data/fmnist_shift || $(PYTHON) tools/dataset_converters/make_fmnist_shift.py \
		--out data/fmnist_shift --seed 0
	$(PYTHON) tools/analysis_tools/fair_comparison.py --labels $(or $(LABELS),60000)

# The out-of-distribution check of the ObjectNet protocol on embedded data: `make perception`'s
# model and recipe with the class-name text-embedding head (MiniLM), tested on the Fashion-MNIST
# test set and on Fashion-MNIST-Shift (the same images rotated, rescaled, on real photos).
TEXTCLS = configs/genrep/fmnist_unet_textcls.py
ood: install
	$(PYTHON) tools/dataset_converters/make_fmnist_shift.py --out data/fmnist_shift --seed 0
	$(PYTHON) tools/train.py $(TEXTCLS) --work-dir work_dirs/fmnist_unet_textcls --resume
	$(PYTHON) tools/test.py $(TEXTCLS) $(call last_ckpt,work_dirs/fmnist_unet_textcls) \
		--work-dir work_dirs/fmnist_unet_textcls/test
	$(PYTHON) tools/test.py configs/genrep/fmnist_shift_textcls.py \
		$(call last_ckpt,work_dirs/fmnist_unet_textcls) --work-dir work_dirs/fmnist_unet_textcls/test_shift

# The embedded scenes of the dense tasks (segmentation, detection, depth): real photo cut-outs on
# real backgrounds from Debian's Tux Paint packages, written in the ADE20K, COCO-Stuff, COCO/LVIS
# and NYU layouts under data/scenes (about 20 s).
scenes: install
	$(PYTHON) tools/dataset_converters/make_scenes.py --out data/scenes --seed 0 --force
	touch $(SCENES_DONE)

# Closed-set segmentation on the scenes (17 classes, mmseg IoUMetric, overlays by mmseg's
# SegVisualizationHook under the test work dir's vis_data/vis_image).
SEG = configs/genrep/scenes_seg_unet.py
seg: install scenes-data
	$(PYTHON) tools/train.py $(SEG) --work-dir work_dirs/scenes_seg_unet --resume
	$(PYTHON) tools/test.py $(SEG) $(call last_ckpt,work_dirs/scenes_seg_unet) \
		--work-dir work_dirs/scenes_seg_unet/test

# GenRep on the scenes' segmentation: stage 0 (generation), stage 1 with and without L_gen_distil
# from the same stage-0 denoiser, stage 2 (joint); each tested like `make seg`.
SEG_GENREP = configs/genrep/scenes_seg_genrep_stage
seg-genrep: install scenes-data
	$(call genrep_chain,$(SEG_GENREP),scenes_seg_genrep_stage,1 1_nodistil 2)

# Open-vocabulary segmentation on the scenes: trained on the 42 seen fine categories' names,
# tested on all 53 (11 unseen) named by MiniLM text embeddings; mIoU over all, seen and unseen
# classes; overlays under the test work dir's vis_data/vis_image.
OVSEG = configs/genrep/scenes_ov_seg_unet.py
ovseg: install scenes-data
	$(PYTHON) tools/train.py $(OVSEG) --work-dir work_dirs/scenes_ov_seg_unet --resume
	$(PYTHON) tools/test.py $(OVSEG) $(call last_ckpt,work_dirs/scenes_ov_seg_unet) \
		--work-dir work_dirs/scenes_ov_seg_unet/test

# Open-vocabulary detection on the scenes (13 base / 4 novel super-categories, mmdet OVCocoMetric
# AP50 base/novel/all; boxes by DetVisualizationHook under each test work dir's vis_data/vis_image):
# the GenRep chain, stage 0 (generation) then stage 1 with and without the region L_gen_distil.
OVDET = configs/genrep/scenes_ovdet_genrep_stage
ovdet: install scenes-data
	$(call genrep_chain,$(OVDET),scenes_ovdet_genrep_stage,1 1_nodistil)

# Monocular depth on the scenes' NYU-layout tree (mmseg DepthEstimator + genrep.BinsDepthHead,
# DepthMetric; colour depth maps under the test work dir's vis_data/vis_image).
DEPTH = configs/genrep/scenes_depth_unet.py
depth: install scenes-data
	$(PYTHON) tools/train.py $(DEPTH) --work-dir work_dirs/scenes_depth_unet --resume
	$(PYTHON) tools/test.py $(DEPTH) $(call last_ckpt,work_dirs/scenes_depth_unet) \
		--work-dir work_dirs/scenes_depth_unet/test

# GenRep on the scenes' depth: stage 0 (generation conditioned on the scene class), stage 1 with
# and without the scene-class L_gen_distil, stage 2; each tested like `make depth`.
DEPTH_GENREP = configs/genrep/scenes_depth_genrep_stage
depth-genrep: install scenes-data
	$(call genrep_chain,$(DEPTH_GENREP),scenes_depth_genrep_stage,1 1_nodistil 2)

# The scenes, written again only when the tool changes (`make scenes` always rewrites them).
SCENES_DONE = data/scenes/meta/written
$(SCENES_DONE): tools/dataset_converters/make_scenes.py
	$(PYTHON) tools/dataset_converters/make_scenes.py --out data/scenes --seed 0 --force
	touch $@
scenes-data: install $(SCENES_DONE)

# The benchmark suite: every embedded job of benchmarks/suite_jobs.py (a job whose result the suite
# made under the same config, _base_ files, genrep code and installed versions is kept; FORCE=1
# re-runs it), one results table
# (work_dirs/suite/results.md and .json, change against benchmarks/suite_reference.json, a drop of
# more than 2% flagged, exit 1), configs/genrep/metafiles/*/metafile.yaml and model-index.yml.
suite: install scenes-data
	$(PYTHON) tools/benchmark_suite.py $(if $(FORCE),--force)

# Every paper config at its real size on this CPU (benchmarks/paper_smoke.py): random-weight
# checkpoints of the upstream shapes written once to work_dirs/random_checkpoints (about 13 GB),
# then one training and one test iteration at batch 1 a config, one process at a time under a
# memory watchdog; the table in work_dirs/paper_smoke/results.md (hours on 2 cores; ONLY=... runs
# some configs). The cost card: python benchmarks/paper_cost.py (docs/paper_cost.md).
paper-smoke: install
	$(PYTHON) benchmarks/paper_smoke.py $(if $(ONLY),--only $(ONLY))

test: install
	$(PYTHON) -m pytest

test-slow: install
	$(PYTHON) -m pytest -m slow

# Two commands do everything on a fresh Debian machine with Python 3.11 (as root):
#   make main   installs the stack (first time only), trains and evaluates the main job: GenRep on
#               the embedded Fashion-MNIST (stage 0 -> 1 -> 2, then the test with FID/IS/CAS)
#   make test   installs the stack (first time only), runs the test suite
PYTHON ?= python3

.PHONY: install main perception scenes test test-slow

install:
	PYTHON=$(PYTHON) bash tools/install.sh

# GenRep on the embedded data: the feature net of FID/CAS (cached), generative pretraining
# (stage 0), perception with generative distillation (stage 1, validated with top-1 and ECE), joint
# training with gradient alignment (stage 2), then the test of stage 2: top-1, ECE and its
# reliability diagram, FID, IS and CAS of class-conditional samples and their grid.
GENREP = configs/genrep/fmnist_genrep_stage
# Each stage resumes its own work dir: a run that was stopped goes on where it stopped, a finished one
# is kept (delete work_dirs/ to train again from scratch).
main: install
	$(PYTHON) tools/analysis_tools/train_feature_net.py
	$(PYTHON) tools/train.py $(GENREP)0.py --work-dir work_dirs/fmnist_genrep_stage0 --resume
	$(PYTHON) tools/train.py $(GENREP)1.py --work-dir work_dirs/fmnist_genrep_stage1 --resume
	$(PYTHON) tools/train.py $(GENREP)2.py --work-dir work_dirs/fmnist_genrep_stage2 --resume
	$(PYTHON) tools/test.py $(GENREP)2.py work_dirs/fmnist_genrep_stage2/epoch_1.pth \
		--work-dir work_dirs/fmnist_genrep_stage2/test

# The perception-only baseline: the same UNet backbone, cross-entropy alone, two epochs.
PERCEPTION = configs/genrep/fmnist_unet_cls.py
perception: install
	$(PYTHON) tools/train.py $(PERCEPTION) --work-dir work_dirs/fmnist_unet_cls --resume
	$(PYTHON) tools/test.py $(PERCEPTION) \
		"work_dirs/fmnist_unet_cls/$$(basename "$$(cat work_dirs/fmnist_unet_cls/last_checkpoint)")" \
		--work-dir work_dirs/fmnist_unet_cls/test

# The embedded scenes of the dense tasks (segmentation, detection, depth): real photo cut-outs on
# real backgrounds from Debian's Tux Paint packages, written in the ADE20K, COCO-Stuff, COCO/LVIS
# and NYU layouts under data/scenes (about 20 s).
scenes: install
	$(PYTHON) tools/dataset_converters/make_scenes.py --out data/scenes --seed 0 --force

test: install
	$(PYTHON) -m pytest

test-slow: install
	$(PYTHON) -m pytest -m slow

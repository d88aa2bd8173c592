# Two commands do everything on a fresh Debian machine with Python 3.11 (as root):
#   make main   installs the stack (first time only), trains and evaluates the main job
#   make test   installs the stack (first time only), runs the test suite
PYTHON ?= python3
CONFIG ?= configs/genrep/fmnist_unet_cls.py
WORK_DIR ?= work_dirs/fmnist_unet_cls

.PHONY: install main genrep test test-slow

install:
	PYTHON=$(PYTHON) bash tools/install.sh

main: install
	$(PYTHON) tools/train.py $(CONFIG) --work-dir $(WORK_DIR)
	$(PYTHON) tools/test.py $(CONFIG) "$$(cat $(WORK_DIR)/last_checkpoint)" --work-dir $(WORK_DIR)/test

# GenRep on the embedded data: generative pretraining (stage 0), perception with generative
# distillation (stage 1), joint training with gradient alignment (stage 2); each stage is tested.
GENREP = configs/genrep/fmnist_genrep_stage
genrep: install
	$(PYTHON) tools/analysis_tools/train_feature_net.py
	$(PYTHON) tools/train.py $(GENREP)0.py --work-dir work_dirs/fmnist_genrep_stage0
	$(PYTHON) tools/train.py $(GENREP)1.py --work-dir work_dirs/fmnist_genrep_stage1
	$(PYTHON) tools/test.py $(GENREP)1.py work_dirs/fmnist_genrep_stage1/epoch_1.pth \
		--work-dir work_dirs/fmnist_genrep_stage1/test
	$(PYTHON) tools/train.py $(GENREP)2.py --work-dir work_dirs/fmnist_genrep_stage2
	$(PYTHON) tools/test.py $(GENREP)2.py work_dirs/fmnist_genrep_stage2/epoch_1.pth \
		--work-dir work_dirs/fmnist_genrep_stage2/test

test: install
	$(PYTHON) -m pytest tests

test-slow: install
	$(PYTHON) -m pytest tests -m slow

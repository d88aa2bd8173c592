# Two commands do everything on a fresh Debian machine with Python 3.11 (as root):
#   make main   installs the stack (first time only), trains and evaluates the main job
#   make test   installs the stack (first time only), runs the test suite
PYTHON ?= python3
CONFIG ?= configs/genrep/fmnist_unet_cls.py
WORK_DIR ?= work_dirs/fmnist_unet_cls

.PHONY: install main test test-slow

install:
	PYTHON=$(PYTHON) bash tools/install.sh

main: install
	$(PYTHON) tools/train.py $(CONFIG) --work-dir $(WORK_DIR)
	$(PYTHON) tools/test.py $(CONFIG) "$$(cat $(WORK_DIR)/last_checkpoint)" --work-dir $(WORK_DIR)/test

test: install
	$(PYTHON) -m pytest tests

test-slow: install
	$(PYTHON) -m pytest tests -m slow

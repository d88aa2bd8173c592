"""Fixtures of the tests/ folder (the default scope isolation and genrep's import are in the
repository's root conftest.py)."""
import contextlib
import logging
import os.path as osp
import uuid

import pytest

from genrep.utils.files import load_script

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture
def repo_root():
    return REPO_ROOT


def load_tool(path):
    """The script at ``path`` (relative to the repository root: a tool, a benchmark, a demo, a
    test helper) imported as a module named after its file."""
    return load_script(osp.join(REPO_ROOT, path))


@contextlib.contextmanager
def logged_messages():
    """The messages logged to mmengine's current MMLogger inside the ``with`` block, as a list."""
    from mmengine.logging import MMLogger
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def output_tail(proc, chars=2500):
    """A failed tool run's last printed lines: stdout (the ranks' logs, how far the run got) and
    stderr (the error), for an assertion message."""
    return f'--- stdout ---\n{proc.stdout[-chars:]}\n--- stderr ---\n{proc.stderr[-chars:]}'


# Data that tools/install.sh installs from Debian packages: where it is missing the install is
# broken, which the tests report as a failure, not a skip.
DEBIAN_DATA = {'/usr/share/tuxpaint/stamps': 'tuxpaint-stamps-default',
               '/usr/share/tuxpaint/templates': 'tuxpaint-data',
               '/usr/share/datasets/fashion-mnist': 'dataset-fashion-mnist'}


def require_debian_data(*paths):
    """Fail, naming the Debian package, where one of ``paths`` (keys of ``DEBIAN_DATA`` or files
    below them) is missing."""
    for path in paths:
        if not osp.exists(path):
            package = next((p for root, p in DEBIAN_DATA.items() if path.startswith(root)), '?')
            pytest.fail(f'{path} missing: tools/install.sh installs it (Debian package '
                        f'{package})', pytrace=False)


@pytest.fixture
def tuxpaint():
    """The tuxpaint stamps and photos, required."""
    require_debian_data('/usr/share/tuxpaint/stamps', '/usr/share/tuxpaint/templates')


@pytest.fixture
def stage1_training_cfg(tmp_path):
    """Makes tests/data/configs/fmnist_genrep_tiny_stage1.py's config as tools/train.py runs it
    (resumable loops; the teacher cost hook after the ``custom_hooks`` given), training alone
    (no validation, no best checkpoint) on 8 FashionMNIST images written below ``tmp_path``, its
    work_dir there too, under an experiment name (so a message hub) of the test's own."""
    from data_fixtures import write_fashion_mnist
    from mmengine.config import Config

    from genrep.engine.runner_utils import use_resumable_loops, use_teacher_cost_hook

    def make(custom_hooks=None):
        data = write_fashion_mnist(tmp_path / 'data', num_train=8, num_test=4)
        cfg = Config.fromfile(
            osp.join(REPO_ROOT, 'tests/data/configs/fmnist_genrep_tiny_stage1.py'))
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[loader].dataset.data_root = str(data)
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        cfg.default_hooks.checkpoint.save_best = None
        cfg.work_dir = str(tmp_path / 'work')
        # mmengine names the run's message hub and logger after the config file and the second
        # it starts: two runs in one second would share one hub and read each other's scalars
        cfg.experiment_name = f'{tmp_path.name}_stage1_{uuid.uuid4().hex[:8]}'
        if custom_hooks is not None:
            cfg.custom_hooks = custom_hooks
        use_resumable_loops(cfg)
        use_teacher_cost_hook(cfg)
        return cfg

    return make

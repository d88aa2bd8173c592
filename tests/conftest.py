"""Shared pytest set-up. Importing genrep first applies genrep.compat before any test imports
torchvision, mmpretrain or diffusers."""
import os.path as osp

import genrep  # noqa: F401
import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture
def repo_root():
    return REPO_ROOT


@pytest.fixture(autouse=True)
def isolated_default_scope():
    """mmengine's default scope is process-global; a test (or a module fixture building a Runner)
    that sets one must not change how another test's unscoped ``type=`` names resolve. Every test
    starts and ends with no default scope."""
    from mmengine.registry import DefaultScope
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()

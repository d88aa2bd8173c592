"""Shared pytest set-up. Importing genrep first applies genrep.compat before any test imports
torchvision, mmpretrain or diffusers."""
import os.path as osp

import genrep  # noqa: F401
import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture
def repo_root():
    return REPO_ROOT

"""Fixtures of the tests/ folder (the default scope isolation and genrep's import are in the
repository's root conftest.py)."""
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture
def repo_root():
    return REPO_ROOT

"""Fixtures of the tests/ folder (the default scope isolation and genrep's import are in the
repository's root conftest.py)."""
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture
def repo_root():
    return REPO_ROOT


def output_tail(proc, chars=2500):
    """A failed tool run's last printed lines: stdout (the ranks' logs, how far the run got) and
    stderr (the error), for an assertion message."""
    return f'--- stdout ---\n{proc.stdout[-chars:]}\n--- stderr ---\n{proc.stderr[-chars:]}'

"""Shared pytest set-up of every test folder (tests/ and the projects' tests). Importing genrep
first applies genrep.compat before any test imports torchvision, mmpretrain or diffusers."""
import genrep  # noqa: F401
import pytest


@pytest.fixture(autouse=True)
def isolated_default_scope():
    """mmengine's default scope is process-global; a test (or a module fixture building a Runner)
    that sets one must not change how another test's unscoped ``type=`` names resolve. Every test
    starts and ends with no default scope."""
    from mmengine.registry import DefaultScope
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()

"""An example genrep plugin: a per-location classification head and its task adapter.

Importing this package registers ``PatchClsHead`` in mmpretrain's MODELS registry and
``PatchClassificationAdapter`` in genrep's TASK_ADAPTERS registry; a config imports it with
``custom_imports = dict(imports=['projects.example_head.example_head'])``.
"""
from .patch_adapter import PatchClassificationAdapter
from .patch_cls_head import PatchClsHead

__all__ = ['PatchClassificationAdapter', 'PatchClsHead']

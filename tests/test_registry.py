"""genrep's registries find every genrep module, lazily, and from any OpenMMLab scope."""
import importlib

import pytest

import genrep.registry as registry

EXPECTED = {
    'MODELS': [
        'DiffusionBackbone', 'UNet2DDenoiser', 'UNet2DConditionDenoiser', 'DiTDenoiser',
        'GenerativeDistillationLoss', 'RepAlignLoss', 'SemanticNoiseAdjuster',
        'FashionMNISTFeatureNet', 'GenRep'
    ],
    'HOOKS': ['SemanticEMAHook', 'GenerationEvalHook'],
    'METRICS': ['ExpectedCalibrationError', 'GenerationMetric'],
    'POSTERIORS': ['ReverseChainPosterior', 'DenoisingErrorPosterior'],
    'DIFFUSION_SCHEDULERS': ['DiffusionSchedule'],
    'OPTIM_WRAPPERS': ['GradientAlignOptimWrapper', 'AmpGradientAlignOptimWrapper'],
    'DATASETS': ['FashionMNIST'],
}


@pytest.mark.parametrize('registry_name, names', sorted(EXPECTED.items()))
def test_registry_finds_modules(registry_name, names):
    reg = getattr(registry, registry_name)
    for name in names:
        cls = reg.get(name)
        assert cls is not None and cls.__name__ == name, (registry_name, name)
        assert cls.__module__.startswith('genrep.'), cls.__module__


def test_registries_are_children_of_mmengine_roots():
    from mmengine import registry as mm
    for name in ('MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'LOOPS',
                 'OPTIM_WRAPPERS'):
        ours = getattr(registry, name)
        assert ours.parent is getattr(mm, name), name
        assert ours.scope == 'genrep'
    assert registry.POSTERIORS.scope == 'genrep'
    assert registry.DIFFUSION_SCHEDULERS.scope == 'genrep'


@pytest.mark.parametrize('toolkit', ['mmpretrain', 'mmseg', 'mmdet'])
def test_genrep_modules_resolve_from_other_scopes(toolkit):
    from genrep.models.backbones import DiffusionBackbone
    models = importlib.import_module(f'{toolkit}.registry').MODELS
    assert models.get('genrep.DiffusionBackbone') is DiffusionBackbone
    datasets = importlib.import_module(f'{toolkit}.registry').DATASETS
    assert datasets.get('genrep.FashionMNIST').__name__ == 'FashionMNIST'


def test_every_public_module_class_is_registered():
    """Each public nn.Module / dataset class exported by a genrep subpackage is in a registry
    (task adapters in TASK_ADAPTERS, other modules in MODELS)."""
    import torch.nn as nn
    from mmengine.dataset import BaseDataset
    from mmengine.hooks import Hook

    from genrep.models.tasks import TaskAdapter
    for package, reg, base in (('genrep.models', registry.MODELS, nn.Module),
                               ('genrep.models.tasks', registry.TASK_ADAPTERS, TaskAdapter),
                               ('genrep.engine', registry.HOOKS, Hook),
                               ('genrep.diffusion', registry.MODELS, nn.Module),
                               ('genrep.datasets', registry.DATASETS, BaseDataset)):
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not isinstance(obj, type) or not issubclass(obj, base) or obj is TaskAdapter or (
                    name.startswith(('Diffusers', 'Base'))):
                continue
            owner = registry.TASK_ADAPTERS if issubclass(obj, TaskAdapter) else reg
            assert owner.get(name) is obj, f'{package}.{name} is not registered'

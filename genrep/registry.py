"""genrep's registries.

Each is a child of mmengine's root registry of the same kind, so a config in any OpenMMLab scope can
build a genrep module as ``type='genrep.DiffusionBackbone'`` and genrep configs can use stock
mmpretrain/mmseg/mmdet modules as ``type='mmseg.FPNHead'``. ``locations`` makes registration lazy: the
module that defines a class is imported the first time the registry is searched.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    locations=['genrep.models', 'genrep.diffusion', 'genrep.evaluation'])
OPTIM_WRAPPERS = Registry(
    'optim wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['genrep.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['genrep.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['genrep.engine'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['genrep.evaluation'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['genrep.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, locations=['genrep.datasets'])
# Functions a config names, e.g. FSDP's auto-wrap policy (``strategy.model_wrapper``).
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, locations=['genrep.engine'])

# Registries with no OpenMMLab counterpart: estimators of log p(x|y) (Eq. 2-3), noise schedules and
# task adapters.
POSTERIORS = Registry('posterior', scope='genrep', locations=['genrep.diffusion'])
DIFFUSION_SCHEDULERS = Registry(
    'diffusion scheduler', scope='genrep', locations=['genrep.diffusion'])
# Task adapters: how GenRep reads a task's losses and class scores from a stock perception model.
TASK_ADAPTERS = Registry('task adapter', scope='genrep', locations=['genrep.models.tasks'])

"""Checks of a merged config before anything is built, each failure one line naming the config file
and the key: hook arguments (a typo in ``default_hooks.checkpoint`` otherwise fails at the first
save, an epoch later) and class counts (``model.head.num_classes=5`` on 10-class data otherwise
ends in ``IndexError: Target 7 is out of bounds`` inside the loss). An open-vocabulary config
(one with ``OpenVocabularyHook``) names its classes by text at validation and test, so its counts
are checked against the training data only. Local weights (a diffusers or text-model directory, an
``init_cfg`` checkpoint) must exist before the model is built: a missing one ends in one line
naming the key and the path instead of a stack trace from diffusers or a hub lookup. Sharded
training (``strategy.type='FSDPStrategy'``) refuses the gradient alignment, and on a machine
without CUDA the two settings with which FSDP cannot run there."""
import inspect
import os.path as osp
from typing import Any, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmengine.registry import DATASETS, HOOKS, DefaultScope

from .runner_utils import REMOTE_PREFIXES
from .vocabulary_hook import OpenVocabularyHook

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class ConfigError(ValueError):
    """A config that cannot work; the message names the config file and the key."""


def validate_config(cfg: Config, filename: str) -> None:
    """Check the hooks' arguments and the model's class counts against the datasets; raise
    :class:`ConfigError` at the first problem."""
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        check_hook_arguments(cfg, filename)
        check_class_counts(cfg, filename)
    check_local_weights(cfg, filename)
    check_sharded_training(cfg, filename)


def _lookup(registry, type_name, scope: Optional[str] = None):
    """The class a config's ``type`` names, resolved as the Runner's build would (the default
    scope, or the config's ``_scope_``)."""
    if inspect.isclass(type_name):
        return type_name
    if not isinstance(type_name, str):
        return None
    with registry.switch_scope_and_registry(scope) as scoped:
        return scoped.get(type_name)


def _hook_configs(cfg: Config) -> Iterator[Tuple[str, dict]]:
    for name, hook in (cfg.get('default_hooks') or {}).items():
        if isinstance(hook, dict):
            yield f'default_hooks.{name}', hook
    for index, hook in enumerate(cfg.get('custom_hooks') or []):
        if isinstance(hook, dict):
            yield f'custom_hooks.{index}', hook


def check_hook_arguments(cfg: Config, filename: str) -> None:
    """Every key of every hook config must be an argument of the hook's class.

    A hook class taking ``**kwargs`` accepts any key, except mmengine's CheckpointHook, which hands
    them to ``Runner.save_checkpoint``, where none fits.
    """
    for path, hook_cfg in _hook_configs(cfg):
        hook_type = hook_cfg.get('type')
        hook_cls = _lookup(HOOKS, hook_type, hook_cfg.get('_scope_'))
        if hook_cls is None:
            raise ConfigError(f'{filename}: {path}.type={hook_type!r} is not a registered hook')
        params = inspect.signature(hook_cls.__init__).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        known = {name for name, p in params.items()
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if issubclass(hook_cls, MMEngineCheckpointHook):
            # mmengine's hands **kwargs to Runner.save_checkpoint, which takes none of them;
            # genrep's passes its **kwargs to mmengine's and refuses the rest.
            takes_any = False
            known |= set(inspect.signature(MMEngineCheckpointHook.__init__).parameters)
        known -= {'self', 'kwargs'}
        unknown = sorted(set(hook_cfg) - known - {'type', 'priority', '_scope_'})
        if unknown and not takes_any:
            raise ConfigError(f'{filename}: {path}.{unknown[0]}: {hook_cls.__name__} has no '
                              f'argument {unknown[0]!r} (it takes {sorted(known)})')


def _num_classes_keys(node: Any, path: str) -> Iterator[Tuple[str, int]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes' and isinstance(value, int):
                yield f'{path}.{key}', value
            else:
                yield from _num_classes_keys(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _num_classes_keys(value, f'{path}.{index}')


def dataset_classes(dataset_cfg: Optional[dict]) -> Optional[Tuple[str, List[str]]]:
    """(dataset type, class names) of a dataset config, from its ``metainfo`` or its class's
    ``METAINFO``, looking inside dataset wrappers; None where they are not known up front."""
    if not isinstance(dataset_cfg, dict):
        return None
    classes = (dataset_cfg.get('metainfo') or {}).get('classes')
    dataset_type = dataset_cfg.get('type')
    dataset_cls = _lookup(DATASETS, dataset_type, dataset_cfg.get('_scope_'))
    if classes is None and dataset_cls is not None:
        classes = (getattr(dataset_cls, 'METAINFO', None) or {}).get('classes')
    if classes is not None:
        return getattr(dataset_cls, '__name__', str(dataset_type)), list(classes)
    inner = dataset_cfg.get('dataset') or (dataset_cfg.get('datasets') or [None])[0]
    return dataset_classes(inner)


def is_open_vocabulary(cfg: Config) -> bool:
    """Whether an ``OpenVocabularyHook`` gives the model each phase's class names."""
    for _, hook_cfg in _hook_configs(cfg):
        hook_cls = _lookup(HOOKS, hook_cfg.get('type'), hook_cfg.get('_scope_'))
        if hook_cls is not None and issubclass(hook_cls, OpenVocabularyHook):
            return True
    return False


def check_class_counts(cfg: Config, filename: str) -> None:
    """Every ``num_classes`` in the model (and the top-level data preprocessor) must equal the
    number of classes of the datasets the config trains and evaluates on (of the training data
    alone for an open-vocabulary config, whose test vocabulary may be another)."""
    counts = list(_num_classes_keys(cfg.get('model'), 'model'))
    counts += list(_num_classes_keys(cfg.get('data_preprocessor'), 'data_preprocessor'))
    if not counts:
        return
    loaders = DATALOADERS[:1] if is_open_vocabulary(cfg) else DATALOADERS
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        found = dataset_classes(loader_cfg.get('dataset')) if isinstance(loader_cfg, dict) else None
        if found is None:
            continue
        dataset_type, classes = found
        for key, value in counts:
            if value != len(classes):
                raise ConfigError(
                    f'{filename}: {key}={value} but {loader}.dataset ({dataset_type}) has '
                    f'{len(classes)} classes (its metainfo classes); set {key}={len(classes)} or '
                    f'give the dataset metainfo=dict(classes=[...]) with {value} names')


# Keys of a model config whose string value is a local weights directory (diffusers'
# save_pretrained folders, text models); ``pretrained`` may name a checkpoint file instead
# (mmseg / mmdet), and a sibling ``subfolder`` is read below it.
LOCAL_WEIGHTS_KEYS = ('pretrained', 'model_dir')


def _local_weights(node: Any, path: str) -> Iterator[Tuple[str, str]]:
    """(config key, local path) of every weights location under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in LOCAL_WEIGHTS_KEYS and isinstance(value, str):
                subfolder = node.get('subfolder') if key == 'pretrained' else None
                yield f'{path}.{key}', osp.join(value, subfolder) if subfolder else value
            elif (key == 'checkpoint' and isinstance(value, str)
                  and node.get('type') == 'Pretrained'):
                yield f'{path}.{key}', value
            else:
                yield from _local_weights(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _local_weights(value, f'{path}.{index}')


def check_local_weights(cfg: Config, filename: str) -> None:
    """Every local weights directory or file the model config names must exist."""
    for key, location in _local_weights(cfg.get('model'), 'model'):
        if location.startswith(REMOTE_PREFIXES) or osp.exists(osp.expanduser(location)):
            continue
        raise FileNotFoundError(
            f'{filename}: {key}: {location!r} does not exist (local weights: save the '
            'checkpoint there, e.g. with save_pretrained, or set the key to its path)')


def check_sharded_training(cfg: Config, filename: str) -> None:
    """An FSDP config (``strategy.type`` FSDPStrategy, under ``runner_type='FlexibleRunner'``):

    * ``optim_wrapper.type`` must not be a gradient-aligning wrapper (Eq. 15 needs the whole task
      gradients, each FSDP process holds a shard; the wrapper would refuse at the first step);
    * without CUDA, ``strategy.model_wrapper.device_id`` must be 'cpu' (FSDPStrategy's default,
      the local rank, makes FSDP look for an accelerator) and a full state dict must not
      ``offload_to_cpu`` (``state_dict_cfg='full'`` does): FSDP1 of torch 2.13 then dies with
      SIGSEGV in ``_full_post_state_dict_hook`` cloning the gathered CPU tensors, at the first
      checkpoint.
    """
    strategy = cfg.get('strategy') or {}
    if str(strategy.get('type', '')).split('.')[-1] != 'FSDPStrategy':
        return
    wrapper = str((cfg.get('optim_wrapper') or {}).get('type', 'OptimWrapper'))
    if 'GradientAlign' in wrapper:
        raise ConfigError(f'{filename}: optim_wrapper.type={wrapper!r} cannot run with '
                          "strategy.type='FSDPStrategy': the gradient alignment (Eq. 15) needs "
                          'the whole task gradients and FSDP shards them; train stage 2 with DDP '
                          "(no strategy) or use optim_wrapper.type='OptimWrapper'")
    import torch
    if torch.cuda.is_available():
        return
    device_id = (strategy.get('model_wrapper') or {}).get('device_id')
    if str(device_id) != 'cpu':
        raise ConfigError(f'{filename}: strategy.model_wrapper.device_id={device_id!r} on a '
                          "machine without CUDA: FSDP on CPU processes needs device_id='cpu'")
    state_dict_cfg = strategy.get('state_dict_cfg', 'local')
    configs = ([] if not isinstance(state_dict_cfg, dict) else
               [(key, state_dict_cfg.get(key) or {})
                for key in ('state_dict_config', 'optim_state_dict_config')])
    offloading = [f'strategy.state_dict_cfg.{key}' for key, value in configs
                  if value.get('offload_to_cpu')]
    if state_dict_cfg == 'full':
        offloading = ["strategy.state_dict_cfg='full'"]
    if offloading:
        raise ConfigError(
            f'{filename}: {offloading[0]} gathers the full state dict with offload_to_cpu=True, '
            'which kills FSDP on CPU (SIGSEGV cloning the gathered tensors, torch 2.13) at the '
            "first checkpoint; without CUDA set state_dict_cfg=dict(state_dict_type="
            "'FULL_STATE_DICT', state_dict_config=dict(type='FullStateDictConfig', "
            "offload_to_cpu=False, rank0_only=True), optim_state_dict_config=dict("
            "type='FullOptimStateDictConfig', offload_to_cpu=False, rank0_only=True))")

"""The one place for fixes of third-party breakage.

Each fix is a named function that checks whether it is needed, changes as little as possible, and is
a no-op where the environment is already fine; :func:`apply_all` runs them all and is safe to call
again. Each fix has a test in ``tests/test_compat.py`` that fails without it.
"""
import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import os
import pickle
import sys
import types
import warnings

# Holds the schema-only ``torchvision`` op definitions: collecting it would unregister them.
_torchvision_schema_library = None

# The statistics methods mmengine 0.10.7 stores by reference in every pickled HistoryBuffer
# (``HistoryBuffer._set_default_statistics``).
_HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def define_torchvision_nms_schemas():
    """Let ``import torchvision`` succeed when its compiled ops do not load (CPU-only torch).

    Breaks: torchvision 0.2x wheels built for CUDA, installed next to a CPU build of torch (here
    torchvision 0.28.0 with torch 2.13.0+cpu). Its ``_C.so`` fails to load, and
    ``torchvision/_meta_registrations.py`` then calls
    ``torch.library.register_fake('torchvision::nms')`` (and ``qnms``) without the
    ``extension._has_ops()`` guard its other ops have, so ``import torchvision`` raises
    ``RuntimeError: operator torchvision::nms does not exist``; so does anything importing it
    (mmpretrain).

    Fix: define only the two schemas torchvision itself would have registered, with no kernels, so
    the fake registration has an operator to attach to. Safe because nothing new can run:
    torchvision still reports ``_has_ops() is False`` and ``torchvision.ops.nms`` raises its own
    "Couldn't load custom C++ ops" error. Nothing is done if torchvision is absent or already
    imported, if the ops already exist, or if its ``_C`` library loads (then torchvision is fine as
    it is). Must run before torchvision is imported.

    Returns:
        str: 'already-imported', 'absent', 'ops-present', 'loaded' (its ``_C`` loaded here), or
        'defined' (the schemas were defined).
    """
    global _torchvision_schema_library
    if 'torchvision' in sys.modules:
        return 'already-imported'
    spec = importlib.util.find_spec('torchvision')
    if spec is None or spec.origin is None:
        return 'absent'

    import torch
    if hasattr(torch.ops.torchvision, 'nms') and hasattr(torch.ops.torchvision, 'qnms'):
        return 'ops-present'
    # Find ``_C`` the way torchvision.extension does, without importing torchvision.
    lib_dir = os.path.dirname(spec.origin)
    finder = importlib.machinery.FileFinder(
        lib_dir, (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES))
    lib_spec = finder.find_spec('_C')
    if lib_spec is not None:
        try:
            torch.ops.load_library(lib_spec.origin)
            return 'loaded'
        except OSError:
            pass  # The case this fix is for; torchvision sees the same failure (_has_ops() False).

    library = torch.library.Library('torchvision', 'DEF')
    library.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    library.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _torchvision_schema_library = library
    return 'defined'


def _numeric_dtype_classes(np):
    """The classes (numpy >= 1.25) of bool, integer and float dtypes; unpickling sets their state.

    A checkpoint holds float64/int64 (HistoryBuffer, eta) and whatever numeric scalar a metric
    returned (``best_score``); the object dtype, which would carry arbitrary objects, is left out.
    """
    scalar_types = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                    np.uint64, np.float16, np.float32, np.float64)
    return [type(np.dtype(t)) for t in scalar_types]


def _history_buffer_statistic(owner, name):
    """Stands in for ``builtins.getattr`` in weights_only loads; resolves HistoryBuffer statistics.

    Pickle protocol 2 stores the method ``HistoryBuffer.min`` as ``getattr(HistoryBuffer, 'min')``.
    Allowing the real ``getattr`` would let a checkpoint reach any attribute of any allowed object.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is not HistoryBuffer or name not in _HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            f'weights_only load refused getattr({owner!r}, {name!r}): genrep.compat allows getattr '
            f'only for HistoryBuffer statistics methods {sorted(_HISTORY_BUFFER_STATISTICS)}')
    return getattr(owner, name)


def allow_mmengine_checkpoint_globals():
    """Allowlist for ``torch.load(weights_only=True)`` exactly what mmengine checkpoints hold.

    Breaks: torch >= 2.6 defaults ``torch.load`` to ``weights_only=True``; mmengine 0.10.7
    (``mmengine.runner.checkpoint``) calls ``torch.load`` without ``weights_only``, so resuming
    (``--resume``) fails with ``UnpicklingError`` on the checkpoints mmengine itself wrote: their
    ``message_hub`` holds ``HistoryBuffer`` objects (numpy arrays inside, the statistics methods by
    reference) and numpy scalars (e.g. ``eta``).

    Fix: ``torch.serialization.add_safe_globals`` with the numpy array/dtype/scalar rebuilders, the
    ``HistoryBuffer`` class, and, under the name ``builtins.getattr``, a getattr that resolves only
    ``HistoryBuffer.{min,max,current,mean}``. Safe because loading stays weights_only: none of these
    runs code chosen by the file (numpy rebuilds plain arrays and scalars,
    ``HistoryBuffer.__setstate__`` stores its state), and any other global, e.g. ``os.system``, is
    still refused. No-op if torch has no ``add_safe_globals`` (older than 2.4) or mmengine is
    absent.

    Returns:
        str: 'allowlisted', 'unsupported-torch' or 'absent'.
    """
    if importlib.util.find_spec('mmengine') is None:
        return 'absent'
    import torch.serialization
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return 'unsupported-torch'

    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    # The rebuilders numpy's own pickling names (numpy.core.multiarray in 1.x, numpy._core in 2.x).
    reconstruct_array = np.zeros(0).__reduce__()[0]
    reconstruct_scalar = np.float64(0).__reduce__()[0]
    torch.serialization.add_safe_globals([
        HistoryBuffer,  # the values of message_hub['log_scalars']
        # HistoryBuffer's pickled statistics methods
        (_history_buffer_statistic, 'builtins.getattr'),
        np.ndarray, reconstruct_array,  # HistoryBuffer._log_history and _count_history
        reconstruct_scalar,  # numpy scalars, e.g. message_hub['runtime_info']['eta']
        np.dtype,  # the dtype of each array and scalar
        *_numeric_dtype_classes(np),
    ])
    return 'allowlisted'


class _NumpyWithFloatAlias(types.ModuleType):
    """numpy as lvis.eval sees it: numpy itself, plus the ``float`` alias of numpy < 1.24."""

    float = builtins.float  # what ``np.float`` was: the builtin float, so float64 arrays as before

    def __getattr__(self, name):
        import numpy
        return getattr(numpy, name)


class _PatchAfterExec(importlib.abc.Loader):
    """Wraps a module's loader to call ``patch(module)`` right after the module's code ran."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name):  # get_source, get_filename, ... for tracebacks and inspect
        return getattr(self._loader, name)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; hands the first import of ``fullname`` a loader that patches it."""

    def __init__(self, fullname, patch):
        self.fullname = fullname
        self.patch = patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.fullname:
            return None
        sys.meta_path.remove(self)  # one shot, and lets the other finders locate the real module
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchAfterExec(spec.loader, self.patch)
        return spec


def _give_lvis_eval_float_alias(module):
    module.np = _NumpyWithFloatAlias('numpy')


def give_lvis_eval_numpy_float():
    """Let lvis' own ``LVISEval.accumulate`` run on numpy >= 1.24, where ``np.float`` is gone.

    Breaks: lvis 0.5.3 ``lvis/eval.py`` (``LVISEval.accumulate``) calls ``.astype(dtype=np.float)``;
    numpy 1.24 removed that alias of the builtin float, so every LVIS evaluation (mmdet's LVISMetric
    does ``from lvis import LVISEval``) ends in
    ``AttributeError: module 'numpy' has no attribute 'float'``.

    Fix: only the module ``lvis.eval`` gets, as its global ``np``, numpy plus
    ``float = builtins.float``; numpy itself, and every other module, is left unchanged. A subclass
    would not reach mmdet, and adding ``numpy.float`` back would change numpy for everyone. Safe
    because ``np.float`` was exactly the builtin ``float`` (float64 arrays), so lvis computes what
    it computed with numpy < 1.24. lvis imports cv2 and matplotlib.pyplot and configures root
    logging, so it is not imported here: if ``lvis.eval`` is not imported yet, the patch is applied
    the moment it is. No-op where numpy still has ``float`` or lvis is not installed.

    Returns:
        str: 'not-needed', 'absent', 'patched' (lvis.eval was imported and is patched now),
        'already-patched', or 'on-import' (it will be patched when imported).
    """
    import numpy
    with warnings.catch_warnings():  # numpy 1.20-1.23 warns on access to the alias
        warnings.simplefilter('ignore', DeprecationWarning)
        if hasattr(numpy, 'float'):
            return 'not-needed'
    if 'lvis' not in sys.modules and importlib.util.find_spec('lvis') is None:
        return 'absent'
    lvis_eval = sys.modules.get('lvis.eval')
    if lvis_eval is not None:
        if isinstance(lvis_eval.np, _NumpyWithFloatAlias):
            return 'already-patched'
        _give_lvis_eval_float_alias(lvis_eval)
        return 'patched'
    if not any(isinstance(finder, _PatchOnImport) and finder.fullname == 'lvis.eval'
               for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport('lvis.eval', _give_lvis_eval_float_alias))
    return 'on-import'


class _CudaWithoutDevices(types.ModuleType):
    """torch.cuda as mmengine.dist.utils sees it on a machine without CUDA: no device to select."""

    def set_device(self, device):
        """Nothing to select: the process runs on the CPU."""

    def __getattr__(self, name):
        import torch
        return getattr(torch.cuda, name)


class _TorchWithoutCudaDevices(types.ModuleType):
    """torch as mmengine.dist.utils sees it on a machine without CUDA (see
    :func:`let_mmengine_launchers_run_without_cuda`)."""

    cuda = _CudaWithoutDevices('torch.cuda')

    def __getattr__(self, name):
        import torch
        return getattr(torch, name)


class _DistributedWithoutNccl(types.ModuleType):
    """torch.distributed as mmengine.dist.utils sees it on a machine without CUDA: a request for
    nccl, which needs CUDA, starts gloo."""

    @staticmethod
    def init_process_group(backend=None, *args, **kwargs):
        import torch.distributed
        if backend == 'nccl':
            warnings.warn('genrep.compat: no CUDA on this machine, so the process group uses the '
                          "'gloo' backend instead of the 'nccl' one the config asks for")
            backend = 'gloo'
        return torch.distributed.init_process_group(backend, *args, **kwargs)

    def __getattr__(self, name):
        import torch.distributed
        return getattr(torch.distributed, name)


def let_mmengine_launchers_run_without_cuda():
    """Let ``--launcher pytorch`` (tools/dist_train.sh) and ``--launcher slurm`` start on CPUs.

    Breaks: mmengine 0.10.7 ``mmengine/dist/utils.py``: ``_init_dist_pytorch`` and
    ``_init_dist_slurm`` call ``torch.cuda.set_device(local_rank)`` before
    ``init_process_group`` whatever the backend, so on a machine without CUDA every rank dies with
    ``AttributeError: module 'torch._C' has no attribute '_cuda_setDevice'`` (CPU build of torch;
    "no CUDA GPUs are available" on a CUDA build); and the backend the Runner asks for by default,
    ``nccl``, cannot run without CUDA either.

    Fix: only the module ``mmengine.dist.utils`` gets, as its globals ``torch`` and ``torch_dist``,
    views of torch in which ``torch.cuda.set_device`` does nothing and
    ``init_process_group(backend='nccl')`` starts ``gloo`` (with a warning); torch itself and every
    other module are unchanged. Safe because there is no CUDA device to select and nccl cannot run:
    what the launchers would have done next (rank, world size and master address from the
    environment, ``init_process_group``) is unchanged. Applied only where CUDA is absent and none of
    the accelerators mmengine selects instead (MLU, NPU, MUSA) is present. Tested in
    ``tests/test_engine/test_distributed.py``.

    Returns:
        str: 'not-needed' (CUDA or another accelerator is present), 'absent' (no mmengine),
        'patched' or 'already-patched'.
    """
    if importlib.util.find_spec('mmengine') is None:
        return 'absent'
    import torch
    if torch.cuda.is_available():
        return 'not-needed'
    from mmengine.device import is_mlu_available, is_musa_available, is_npu_available
    if is_mlu_available() or is_npu_available() or is_musa_available():
        return 'not-needed'
    from mmengine.dist import utils as dist_utils
    if isinstance(dist_utils.torch, _TorchWithoutCudaDevices):
        return 'already-patched'
    dist_utils.torch = _TorchWithoutCudaDevices('torch')
    dist_utils.torch_dist = _DistributedWithoutNccl('torch.distributed')
    return 'patched'


def keep_mmpretrain_multimodal_models_off():
    """Let mmpretrain's models import where transformers 5 is installed.

    Breaks: mmpretrain 1.2 ``mmpretrain/models/multimodal/__init__.py`` imports its BLIP, BLIP-2,
    Flamingo, ... models whenever ``transformers>=4.28`` is installed
    (``mmpretrain.utils.dependency.WITH_MULTIMODAL``); their code imports
    ``apply_chunking_to_forward`` and ``prune_linear_layer`` from ``transformers.modeling_utils``,
    which transformers 5 removed, so ``import mmpretrain.models`` (any classifier config) ends in
    ``TypeError: NoneType takes no arguments``. transformers 5 is the one that installs beside
    diffusers 0.42 (which needs huggingface-hub >= 1.32; transformers 4 refuses hub 1.x), and the
    text encoders need it.

    Fix: ``WITH_MULTIMODAL`` is set to False before ``mmpretrain.models`` is imported, so mmpretrain
    registers placeholders for those models, exactly as it does where transformers is absent.
    genrep uses none of them (a config that names one gets mmpretrain's own message that it needs
    the multimodal dependencies). No-op where mmpretrain is absent or transformers is older than 5.

    Returns:
        str: 'absent', 'not-needed', 'patched', 'already-patched' or 'too-late' (mmpretrain.models
        was imported before genrep).
    """
    if importlib.util.find_spec('mmpretrain') is None or importlib.util.find_spec(
            'transformers') is None:
        return 'absent'
    from importlib.metadata import version
    if int(version('transformers').split('.')[0]) < 5:
        return 'not-needed'
    from mmpretrain.utils import dependency
    if not dependency.WITH_MULTIMODAL:
        return 'already-patched'
    if 'mmpretrain.models' in sys.modules:
        return 'too-late'
    dependency.WITH_MULTIMODAL = False
    return 'patched'


FIXES = (define_torchvision_nms_schemas, allow_mmengine_checkpoint_globals,
         give_lvis_eval_numpy_float, let_mmengine_launchers_run_without_cuda,
         keep_mmpretrain_multimodal_models_off)


def apply_all():
    """Apply every fix (idempotent); returns each fix's outcome by function name."""
    return {fix.__name__: fix() for fix in FIXES}

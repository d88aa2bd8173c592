"""What tools/train.py decides before it builds the Runner: where training starts from (resume,
``load_from`` or nothing), whether the work dir may be written into, the resumable loops, and the
log of the teacher's cost."""
import glob
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from .checkpoints import LAST_CHECKPOINT, find_resumable_checkpoint, verify_checkpoint

RESUMABLE_LOOPS = {True: 'genrep.ResumableEpochBasedTrainLoop',
                   False: 'genrep.ResumableIterBasedTrainLoop'}
# load_from values mmengine resolves itself (downloads, model zoos): not checked up front.
REMOTE_PREFIXES = ('http://', 'https://', 'open-mmlab://', 'openmmlab://', 'torchvision://',
                   'mmcls://', 'modelzoo://', 's3://', 'pavi://')


def _is_rank_zero() -> bool:
    # Called before the process group exists; the launchers set RANK.
    return os.environ.get('RANK', '0') == '0'


def resolve_start(cfg: Config, resume: Optional[str], overwrite: bool) -> None:
    """Set ``cfg.resume`` and ``cfg.load_from`` from ``--resume`` / ``--overwrite``.

    - ``resume='auto'``: the newest readable checkpoint of the work dir
      (:func:`~genrep.engine.checkpoints.find_resumable_checkpoint`); with none, the run starts as
      the config says, from ``load_from`` (a retried first stage keeps the previous stage's
      weights).
    - ``resume=<path>``: that checkpoint.
    - no resume: a work dir that already holds checkpoints is refused unless ``overwrite``.

    Whatever ``load_from`` ends up being, a local file is read once here
    (:func:`~genrep.engine.checkpoints.verify_checkpoint`) so that a truncated or refused
    checkpoint fails now, naming its file.
    """
    work_dir = cfg.work_dir
    if resume is None:
        existing = sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth')))
        if existing and not overwrite:
            shown = ', '.join(existing[:4]) + (', ...' if len(existing) > 4 else '')
            raise FileExistsError(
                f'work dir {work_dir} already holds checkpoints ({shown}); pass --resume to '
                'continue that run, or --overwrite to train anew and replace them')
        pointer = osp.join(work_dir, LAST_CHECKPOINT)
        if existing and _is_rank_zero() and osp.exists(pointer):
            os.remove(pointer)  # until the new run saves, nothing here is resumable
    elif resume == 'auto':
        latest = find_resumable_checkpoint(work_dir)
        if latest is None:
            start = (f'load_from={cfg.get("load_from")}' if cfg.get('load_from')
                     else 'the initial weights')
            print_log(f'--resume: {work_dir} holds no checkpoint to resume from; starting from '
                      f'{start}', logger='current')
            cfg.resume = False
        else:
            cfg.resume = True
            cfg.load_from = latest
    else:
        cfg.resume = True
        cfg.load_from = resume
    load_from = cfg.get('load_from')
    if load_from and not str(load_from).startswith(REMOTE_PREFIXES):
        verify_checkpoint(str(load_from))


def use_resumable_loops(cfg: Config) -> None:
    """A ``train_cfg`` that names no loop type gets the resumable loop of its kind
    (``by_epoch``), which resumes mid-epoch and restores the random states."""
    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, dict) and 'type' not in train_cfg and 'by_epoch' in train_cfg:
        train_cfg['type'] = RESUMABLE_LOOPS[bool(train_cfg.pop('by_epoch'))]


def use_teacher_cost_hook(cfg: Config) -> None:
    """A GenRep model with a teacher logs the teacher's share of each step's wall time
    (:class:`~genrep.engine.TeacherCostHook`), unless the config already has the hook."""
    model = cfg.get('model') or {}
    if str(model.get('type', '')).split('.')[-1] != 'GenRep' or not model.get('posterior'):
        return
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(str(hook.get('type', '')).split('.')[-1] == 'TeacherCostHook' for hook in hooks):
        cfg.custom_hooks = hooks + [dict(type='genrep.TeacherCostHook')]

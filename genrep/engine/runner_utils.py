"""What tools/train.py decides before it builds the Runner: where training starts from (resume,
``load_from`` or nothing), whether the work dir may be written into, the resumable loops, and the
log of the teacher's cost. Each change these functions make to the user's config is logged
(:func:`log_rewrite`), so that the run's log says what ran besides the config as written."""
import glob
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from .checkpoints import LAST_CHECKPOINT, find_resumable_checkpoint, verify_checkpoint

RESUMABLE_LOOPS = {True: 'genrep.ResumableEpochBasedTrainLoop',
                   False: 'genrep.ResumableIterBasedTrainLoop'}
# mmengine's loops as configs name them (the mmseg / mmdet jobs): their resumable subclasses.
STOCK_LOOPS = {f'{scope}{kind}BasedTrainLoop': RESUMABLE_LOOPS[kind == 'Epoch']
               for scope in ('', 'mmengine.') for kind in ('Epoch', 'Iter')}
# load_from values mmengine resolves itself (downloads, model zoos): not checked up front.
REMOTE_PREFIXES = ('http://', 'https://', 'open-mmlab://', 'openmmlab://', 'torchvision://',
                   'mmcls://', 'modelzoo://', 's3://', 'pavi://')


def log_rewrite(key: str, value, why: str) -> None:
    """One log line for a config setting that tools/train.py sets on the user's behalf."""
    print_log(f'tools/train.py sets {key} = {value!r}: {why}', logger='current')


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
            log_rewrite('load_from', latest, '--resume: the newest readable checkpoint of '
                        f'{work_dir} (resume=True)')
    else:
        cfg.resume = True
        cfg.load_from = resume
        log_rewrite('load_from', resume, '--resume <checkpoint> (resume=True)')
    load_from = cfg.get('load_from')
    if load_from and not str(load_from).startswith(REMOTE_PREFIXES):
        verify_checkpoint(str(load_from))


def use_resumable_loops(cfg: Config) -> None:
    """A ``train_cfg`` that names no loop type, or mmengine's ``EpochBasedTrainLoop`` /
    ``IterBasedTrainLoop``, gets the resumable loop of its kind, which resumes mid-epoch and
    restores the random states (and behaves as mmengine's otherwise)."""
    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, dict) and 'type' not in train_cfg and 'by_epoch' in train_cfg:
        train_cfg['type'] = RESUMABLE_LOOPS[bool(train_cfg.pop('by_epoch'))]
        log_rewrite('train_cfg.type', train_cfg['type'],
                    'the config names no loop type (it resumes mid-epoch with the random states; '
                    'name a loop type to use another)')
    elif isinstance(train_cfg, dict) and train_cfg.get('type') in STOCK_LOOPS:
        stock = train_cfg['type']
        train_cfg['type'] = STOCK_LOOPS[stock]
        log_rewrite('train_cfg.type', train_cfg['type'],
                    f"in place of mmengine's {stock}: the same loop, whose resume also restores "
                    'the random states (and, epoch-based, continues mid-epoch)')


def use_teacher_cost_hook(cfg: Config) -> None:
    """A GenRep model with a teacher logs the teacher's share of each step's wall time
    (:class:`~genrep.engine.TeacherCostHook`), unless the config already has the hook."""
    model = cfg.get('model') or {}
    if str(model.get('type', '')).split('.')[-1] != 'GenRep' or not model.get('posterior'):
        return
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(str(hook.get('type', '')).split('.')[-1] == 'TeacherCostHook' for hook in hooks):
        cfg.custom_hooks = hooks + [dict(type='genrep.TeacherCostHook')]
        log_rewrite('custom_hooks', cfg.custom_hooks,
                    "appended genrep.TeacherCostHook, which logs the teacher's share of each step")

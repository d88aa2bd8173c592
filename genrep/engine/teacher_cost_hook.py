"""TeacherCostHook: the share of each training step's wall time that the generative teacher took."""
from typing import Optional

from mmengine.hooks import Hook

from genrep.registry import HOOKS

TEACHER_TIME = 'percept_teacher_time'  # GenRep's log entry: the teacher's seconds this step


@HOOKS.register_module()
class TeacherCostHook(Hook):
    """Logs ``teacher_share``: the teacher's seconds (GenRep's ``percept_teacher_time``) over the
    step's (IterTimerHook's ``time``, data loading included), beside GenRep's
    ``percept_teacher_evals`` (denoiser rows the teacher evaluated). Runs after IterTimerHook and
    before LoggerHook (same priority as the first, registered after it)."""
    priority = 'NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or TEACHER_TIME not in outputs:
            return
        step = runner.message_hub.get_scalar('train/time').current()
        if step > 0:
            runner.message_hub.update_scalar('train/teacher_share',
                                             float(outputs[TEACHER_TIME]) / step)

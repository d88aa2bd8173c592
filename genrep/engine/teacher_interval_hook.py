"""TeacherIntervalHook: the generative teacher on one training iteration in ``interval``.

Why: under data parallelism the iteration waits for the slowest process. A budget of one distilled
image per global batch (what fits the paper's +10% at Stable Diffusion's shapes) puts the whole
teacher on one process every iteration: +9% of the FLOPs, but the other processes wait, and the
wall time grows by the teacher over one process's share of the step (+70% on 8 GPUs at ADE20K's
768 crops; docs/paper_cost.md). Distilling ``interval`` times the images (one a process) on one
iteration in ``interval`` costs the same FLOPs and spreads them over every process.

The distillation loss of the other iterations is the zero of a batch without distilled images
(GenRep's ``distill_images`` budget at 0 for that iteration: every process still takes part in
the loss's divisor), so each distilled image keeps its weight of one task-loss image.
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from genrep.registry import HOOKS


@HOOKS.register_module()
class TeacherIntervalHook(Hook):
    """Runs GenRep's teacher (L_gen_distil) on the iterations ``i`` with ``i % interval ==
    offset`` only, at the model's configured ``distill_images``; on the others its budget is 0.

    Args:
        interval: one iteration in ``interval`` is distilled (1: every iteration, no change).
        offset: which iteration of each interval (0: the first, iteration 0 included).
    """
    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int, offset: int = 0):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'TeacherIntervalHook: interval must be an int >= 1, got '
                             f'{interval!r}')
        if not 0 <= offset < interval:
            raise ValueError(f'TeacherIntervalHook: offset must be in [0, {interval}), got '
                             f'{offset!r}')
        self.interval = interval
        self.offset = offset
        self._budget = None

    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'distill_images') or getattr(model, 'posterior', None) is None:
            raise TypeError(f'TeacherIntervalHook: needs a GenRep model with a posterior, got '
                            f'{type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        self._budget = self._model(runner).distill_images

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = self._model(runner)
        distilled = runner.iter % self.interval == self.offset
        model.distill_images = self._budget if distilled else 0

    def after_train(self, runner) -> None:
        self._model(runner).distill_images = self._budget

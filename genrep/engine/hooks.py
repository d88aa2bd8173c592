"""Hooks of GenRep: the semantic EMA denoiser (Sec. 3.3) and the evaluation of its generation."""
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from genrep.registry import HOOKS, METRICS
from genrep.utils import labelled_grid


@torch.no_grad()
def semantic_ema_update(semantic: nn.Module, unified: nn.Module, momentum: float) -> None:
    """theta_sem <- m theta_sem + (1 - m) theta_unified (Sec. 3.3, third bullet), over parameters
    and floating-point buffers of two modules of the same structure; integer buffers are copied."""
    for (name, target), (_, source) in zip(semantic.state_dict().items(),
                                           unified.state_dict().items()):
        if target.dtype.is_floating_point:
            target.mul_(momentum).add_(source.detach(), alpha=1.0 - momentum)
        else:
            target.copy_(source)


def genrep_model(runner, need: str):
    """The runner's GenRep model, unwrapped from DDP; ``need``: the attribute the hook relies on."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if getattr(model, need, None) is None:
        raise TypeError(f'this hook needs a genrep.GenRep model with `{need}` (stage 2 for the '
                        f'semantic denoiser), got {type(model).__name__} without it')
    return model


@HOOKS.register_module()
class SemanticEMAHook(Hook):
    """Keeps GenRep's semantic denoiser an exponential moving average of the unified one.

    When training starts, a semantic denoiser that was never filled, or was filled by another
    stage (a new stage 2 whose weights come by ``load_from`` from a stage-1 checkpoint, whose copy,
    if it has one, was that stage's teacher), is set to the unified denoiser; a resumed run keeps
    the one saved in its checkpoint. After each optimizer step it moves by
    :func:`semantic_ema_update`; ``momentum=1`` keeps it where it started (a frozen teacher,
    ``GenRep(teacher_weights='semantic')``).

    Args:
        momentum: m (paper: 0.999).
        interval: update every ``interval`` iterations.
        carry_over: a copy filled by an earlier stage is kept as this stage's start instead of
            being refilled (stage 1's frozen pretrained teacher becomes the start of stage 2's
            EMA); a copy never filled is filled as always.
    """
    priority = 'NORMAL'

    def __init__(self, momentum: float = 0.999, interval: int = 1, carry_over: bool = False):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'SemanticEMAHook: momentum must be in [0, 1], got {momentum}')
        self.momentum = momentum
        self.interval = interval
        self.carry_over = carry_over

    def before_train(self, runner) -> None:
        model = genrep_model(runner, 'semantic_denoiser')
        filled_by = int(model.semantic_stage)
        initialized = bool(model.semantic_initialized)
        if not initialized or filled_by not in (-1, model.stage):
            if not (initialized and self.carry_over):
                model.semantic_denoiser.load_state_dict(model.denoiser.state_dict())
                model.semantic_initialized.fill_(True)
            model.semantic_stage.fill_(model.stage)  # a resumed run of this stage keeps it

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            model = genrep_model(runner, 'semantic_denoiser')
            semantic_ema_update(model.semantic_denoiser, model.denoiser, self.momentum)


@HOOKS.register_module()
class GenerationEvalHook(Hook):
    """Evaluates GenRep's class-conditional generation when the test (or validation) epoch ends.

    It draws ``samples_per_class`` images of every class with the model's reverse chain
    (``GenRep.sample``, ``num_steps`` respaced steps, x_sem := x_t), scores them with a generation
    metric (FID, IS, CAS: ``genrep.GenerationMetric``) and adds the scores to the epoch's metrics
    before anything reads them: its priority, HIGHEST, puts it ahead of mmengine's RuntimeInfoHook
    (VERY_HIGH), which copies the metrics to the message hub that the logger's epoch line and JSON
    file read, and ahead of EMAHook, which swaps the EMA weights back out. A grid of the
    first ``grid_rows`` samples of each class is written to ``<work_dir>/<grid_file>``.

    Args:
        metric: config of the generation metric, or a list of them (each scores the same
            samples; e.g. a second ``GenerationMetric`` in another feature space with fewer real
            images); their keys must differ.
        samples_per_class: samples drawn per class.
        num_steps: respaced reverse steps.
        batch_size: samples per reverse chain.
        seed: seed of the sampling noise (the same samples for the same weights).
        grid_file: PNG file name in the work dir; ``None``: no grid.
        grid_rows: samples per class in the grid.
        on_val: also evaluate after each validation epoch.
        sampling: keyword arguments of ``GenRep.sample``: ``sampler`` ('ddpm' or 'ddim'),
            ``eta``, ``guidance_scale`` (classifier-free guidance; DiT's FID-50K uses 1.5).
        classes: the classes to sample; ``None``: all the denoiser's classes.
    """
    priority = 'HIGHEST'

    def __init__(self,
                 metric: Union[dict, Sequence[dict]],
                 samples_per_class: int = 100,
                 num_steps: int = 50,
                 batch_size: int = 250,
                 seed: int = 0,
                 grid_file: Optional[str] = 'samples.png',
                 grid_rows: int = 8,
                 on_val: bool = False,
                 sampling: Optional[dict] = None,
                 classes: Optional[Sequence[int]] = None):
        self.metric_cfgs = [metric] if isinstance(metric, dict) else list(metric)
        self.classes = None if classes is None else list(classes)
        self.sampling = dict(sampling or {})
        unknown = set(self.sampling) - {'sampler', 'eta', 'guidance_scale'}
        if unknown:
            raise KeyError(f'GenerationEvalHook: unknown sampling keys {sorted(unknown)}; '
                           "expected 'sampler', 'eta', 'guidance_scale'")
        self.samples_per_class = samples_per_class
        self.num_steps = num_steps
        self.batch_size = batch_size
        self.seed = seed
        self.grid_file = grid_file
        self.grid_rows = min(grid_rows, samples_per_class)
        self.on_val = on_val

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._evaluate(runner, metrics, runner.test_loop)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        if self.on_val:
            self._evaluate(runner, metrics, runner.val_loop)

    def generate(self, model) -> Tuple[torch.Tensor, torch.Tensor]:
        """[N, C, H, W] samples and their [N] classes, class-major."""
        classes = self.classes if self.classes is not None else range(model.denoiser.num_classes)
        return model.sample_classes(classes, self.samples_per_class, self.num_steps, self.seed,
                                    self.batch_size, **self.sampling)

    def _evaluate(self, runner, metrics: Optional[dict], loop) -> None:
        model = genrep_model(runner, 'sample_classes')
        was_training = model.training
        model.eval()
        images, labels = self.generate(model)
        model.train(was_training)
        samples = [dict(fake_img=img, gt_label=int(label)) for img, label in zip(images, labels)]
        scores = {}
        for cfg in self.metric_cfgs:
            metric = METRICS.build({'_scope_': 'genrep', **cfg})
            metric.process(None, samples)
            new = metric.evaluate(len(images))
            clash = set(new) & set(scores)
            if clash:
                raise KeyError(f'GenerationEvalHook: metrics {sorted(clash)} reported twice; '
                               'give the metrics different feature spaces or prefixes')
            scores.update(new)
        runner.logger.info('generation: ' + ', '.join(f'{k}: {v:.4f}' for k, v in scores.items()))
        if metrics is not None:
            metrics.update(scores)
        if self.grid_file is not None:
            keep = torch.arange(len(labels)) % self.samples_per_class < self.grid_rows
            path = osp.join(runner.work_dir, self.grid_file)
            names = self.class_names(loop, labels[keep][::self.grid_rows].tolist())
            labelled_grid(images[keep], self.grid_rows, names).save(path)
            runner.logger.info(f'sample grid written to {path}')

    @staticmethod
    def class_names(loop, classes: Sequence[int]) -> list:
        """The names of ``classes`` in the metainfo of the loop's dataset, their indices where it
        names none."""
        dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
        names = getattr(dataset, 'metainfo', {}).get('classes') or ()
        return [names[c] if c < len(names) else str(c) for c in classes]

"""GenRep: a perception model and a generation branch that share one denoiser (Sec. 3.2-3.3).

The perception model is any stock OpenMMLab model whose backbone is a :class:`DiffusionBackbone`;
a task adapter (``TASK_ADAPTERS``: classification, segmentation, ...) reads its losses and class
scores, so this class names no task. The denoiser exists once, inside that backbone; the
generation branch, the posterior estimator (teacher) and the semantic EMA copy all work on it.

One training step (``loss``) returns, per objective name of ``genrep.utils.OBJECTIVES``,

* the perception loss, Eq. 5 (:func:`perception_loss`): the task loss plus L_gen_distil (Eq. 4), the
  KL from the diffusion posterior p(y|x) (Eq. 2-3, teacher, no gradient) to the head's q(y|x),
  at the task's granularity (:mod:`genrep.models.distillation`);
* in stage 2 (and 0), the generation loss, Eq. 10 (:func:`generation_loss`): the diffusion loss
  of the diffusion layer (:func:`genrep.diffusion.training_losses`: the noise MSE and the
  variational-bound term that trains the variance and the semantic adjustment of the reverse step,
  Eq. 6-9), and the representation alignment to x_sem, the EMA semantic denoiser's perception
  features.

Like mmdet's detectors, the model wires its parts and delegates the math: the diffusion loss and
sampling (:func:`genrep.diffusion.generate`) to the diffusion layer, the teacher's targets and the
budgets' shares to :mod:`genrep.models.distillation`.

Data parallelism: every random draw of a step (the teacher's chain, the generation loss's label
dropout, timestep and noise) comes from a generator of its sample, keyed by the run seed, the
iteration and the sample's dataset index (:mod:`genrep.models.sample_randomness`); the distilled
images are the first ``distill_images`` of the global batch, and the distillation loss's divisor
is summed over processes (:func:`~genrep.models.distillation.distillation_avg_factor`). So
W processes x batch B train the weights 1 process x batch W B does, up to the order of
floating-point sums (tests/test_reliability/test_dist_train.py).

``parse_losses`` hands the objectives' totals to the optim wrapper (``dict(percept=..., genera=...)``
in stage 2, what ``GradientAlignOptimWrapper`` aligns, Eq. 11-16; one tensor in stages 0 and 1, so
a plain ``OptimWrapper`` works).
"""
import copy
import re
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import get_dist_info
from mmengine.model import BaseModel
from torch import Tensor

from genrep.diffusion.cost import DenoiserCost
from genrep.diffusion.generation import generate
from genrep.diffusion.sample_generators import SampleGenerators
from genrep.diffusion.schedule import DiffusionSchedule
from genrep.diffusion.training_losses import predicted_xstart, training_losses
from genrep.registry import DIFFUSION_SCHEDULERS, MODELS, POSTERIORS, TASK_ADAPTERS
from genrep.utils import GENERATION, PERCEPTION
from .distillation import (distillation_avg_factor, distillation_targets, first_images,
                           local_share)
from .objectives import GenerationLoss, PerceptionLoss, generation_loss, perception_loss
from .sample_randomness import (GENERATION_STREAM, TEACHER_STREAM, sample_generators,
                                sample_keys, step_key)
from .teacher_cache import TeacherCache

Objective = Union[PerceptionLoss, GenerationLoss]


@MODELS.register_module()
class GenRep(BaseModel):
    """GenRep on top of a perception model.

    Args:
        perception: config of the perception model (its backbone a ``genrep.DiffusionBackbone``).
            Its data preprocessor (``data_preprocessor`` when given) serves GenRep.
        task: ``TASK_ADAPTERS`` config of the task adapter that reads the perception model's
            losses and class scores (e.g. ``dict(type='ClassificationAdapter')``).
        stage: 0 = generative pretraining, the generation loss alone: the stand-in for the
            pretrained LDM/DiT the paper starts from, where no such checkpoint exists (the embedded
            data); 1 = perception only (Eq. 5); 2 = joint perception and generation (Eq. 5 and 10),
            usually with ``load_from`` a stage-1 checkpoint.
        schedule: ``DiffusionSchedule`` config of the training diffusion (all T steps).
        posterior: ``POSTERIORS`` config of the teacher p(y|x) (Eq. 2-3); ``None``: no L_gen_distil.
        distill_loss: config of the distillation loss (Eq. 4); its ``loss_weight`` is lambda of
            Eq. 5, and each distilled image counts as one image of the task loss whatever the
            budget (:func:`genrep.models.distillation.distillation_avg_factor`).
        num_candidates: budget: how many classes the teacher covers per image (see
            :mod:`genrep.models.distillation`); ``None``: all classes.
        distill_images: budget: the teacher is estimated for the first ``distill_images`` images
            of the global batch only (all processes together, :meth:`num_distilled`);
            ``None``: all.
        generation_images: budget of stages 0 and 2: the generation loss (Eq. 10, with its two
            no-gradient passes of the semantic denoiser) is computed on the first
            ``generation_images`` images of the global batch only (:meth:`num_generated`), each
            image weighted as in the full batch; ``None``: all. The perception loss still sees
            every image.
        teacher_cache: ``TeacherCache`` arguments (e.g. ``dict(max_age=2000)``): image-level
            teacher estimates are kept per training image (``sample_idx``) and reused for
            ``max_age`` iterations when they cover the step's candidates
            (:mod:`genrep.models.teacher_cache`); ``None``: estimated every step.
        teacher_weights: which denoiser weights the teacher runs on: 'unified' (the denoiser that
            trains, as Algorithm 1 runs ``diffusion_model`` with its attention blocks training) or
            'semantic' (the semantic copy theta_sem, an EMA of the unified denoiser kept by
            ``SemanticEMAHook``; built in stage 1 too when asked for). Where stage 1 trains the
            whole denoiser for perception alone, its teacher degrades with it (on Fashion-MNIST
            from 60% to 17% top-1 in one epoch, README); the semantic copy with ``momentum=1``
            keeps the teacher of the checkpoint the stage starts from.
        teacher_adjust: whether the teacher's reverse chain applies the semantic adjustment of the
            reverse step (Eq. 6-9, with x_sem := x_t as at inference) when the model has one. True:
            the teacher's Gaussian components (Eq. 2) are those of the reverse process the model
            samples with; see docs/architecture.md.
        semantic_noise: ``SemanticNoiseAdjuster`` config (Eq. 6-9), stage 2; ``None``: off.
        rep_align: ``RepAlignLoss`` config (Eq. 10), stage 2; ``None``: off. ``in_channels`` and
            ``target_channels`` default to the denoiser's deepest decoder feature.
        vlb_weight: weight of the variational-bound term of the diffusion loss (improved DDPM's
            hybrid loss uses 0.001 with 4000 steps; it is the only loss of the variance and of the
            semantic adjustment).
        label_dropout: probability of training the denoiser on the null class (classifier-free).
        eps_loss: the noise-prediction loss, 'mse' or 'l1' (latent-diffusion's loss_type l1).
        trainable: regular expressions over parameter names (``perception.backbone...``); only
            matching parameters train. ``None``: all. Paper: attention blocks and heads.
        data_preprocessor, init_cfg: as for any mmengine model.
    """

    def __init__(self,
                 perception: dict,
                 task: dict,
                 stage: int = 1,
                 schedule: Optional[dict] = None,
                 posterior: Optional[dict] = None,
                 distill_loss: Optional[dict] = None,
                 num_candidates: Optional[int] = None,
                 distill_images: Optional[int] = None,
                 generation_images: Optional[int] = None,
                 teacher_cache: Optional[dict] = None,
                 teacher_weights: str = 'unified',
                 teacher_adjust: bool = True,
                 semantic_noise: Optional[dict] = None,
                 rep_align: Optional[dict] = None,
                 vlb_weight: float = 1.0,
                 label_dropout: float = 0.1,
                 eps_loss: str = 'mse',
                 trainable: Optional[Sequence[str]] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if stage not in (0, 1, 2):
            raise ValueError(f'GenRep: stage must be 0 (generative pretraining), 1 (perception) or '
                             f'2 (joint), got {stage!r}')
        if data_preprocessor is not None:
            # The task model knows its preprocessor's default type (ClsDataPreprocessor, ...).
            perception = dict(perception, data_preprocessor=data_preprocessor)
        built = MODELS.build(perception)
        super().__init__(data_preprocessor=built.data_preprocessor, init_cfg=init_cfg)
        self.perception = built
        backbone = getattr(built, 'backbone', None)
        if backbone is None or not hasattr(backbone, 'denoiser'):
            raise TypeError(f'GenRep: the perception model {type(built).__name__} must have a '
                            'genrep.DiffusionBackbone as its backbone')
        self.task = _build_in_genrep_scope(TASK_ADAPTERS, task)
        self.stage = stage
        self.schedule: DiffusionSchedule = _build_in_genrep_scope(
            DIFFUSION_SCHEDULERS, schedule or dict(type='DiffusionSchedule'))
        self.posterior = (_build_in_genrep_scope(POSTERIORS, posterior)
                          if posterior is not None else None)
        self.distill_loss = MODELS.build(
            {'_scope_': 'genrep', **(distill_loss or dict(type='GenerativeDistillationLoss'))})
        self.num_candidates = num_candidates
        self.distill_images = distill_images
        for name, value in (('distill_images', distill_images),
                            ('generation_images', generation_images)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f'GenRep: {name} must be a positive int or None, got {value!r}')
        self.generation_images = generation_images
        if teacher_cache is not None and posterior is None:
            raise ValueError('GenRep: teacher_cache needs a posterior (the teacher it caches)')
        self.teacher_cache = TeacherCache(**teacher_cache) if teacher_cache is not None else None
        if teacher_weights not in ('unified', 'semantic'):
            raise ValueError(f"GenRep: teacher_weights must be 'unified' or 'semantic', got "
                             f'{teacher_weights!r}')
        if teacher_weights == 'semantic' and (posterior is None or stage == 0):
            raise ValueError("GenRep: teacher_weights='semantic' needs a posterior and stage 1 "
                             'or 2')
        self.teacher_weights = teacher_weights
        self.teacher_adjust = teacher_adjust
        self.vlb_weight = vlb_weight
        self.label_dropout = label_dropout
        self.eps_loss = eps_loss

        self.semantic_noise = None
        self.rep_align = None
        self.semantic_denoiser = None
        if stage != 2 and (semantic_noise is not None or rep_align is not None):
            raise ValueError(f'GenRep: semantic_noise and rep_align belong to stage 2 (they need '
                             f'the semantic denoiser of stage 1), got them with stage={stage}')
        if stage == 2 or teacher_weights == 'semantic':
            denoiser = self.denoiser
            if semantic_noise is not None:
                self.semantic_noise = MODELS.build({
                    'type': 'SemanticNoiseAdjuster',
                    '_scope_': 'genrep',
                    'in_channels': denoiser.in_channels,
                    'num_timesteps': self.schedule.num_train_timesteps,
                    **semantic_noise
                })
            if rep_align is not None:
                deepest = denoiser.feature_channels[-1]
                self.rep_align = MODELS.build({
                    'type': 'RepAlignLoss',
                    '_scope_': 'genrep',
                    'in_channels': deepest,
                    'target_channels': deepest,
                    **rep_align
                })
            # theta_sem: an EMA copy of the denoiser (Sec. 3.3), filled from the unified denoiser
            # when a stage's training starts (SemanticEMAHook) and saved with the checkpoints,
            # with the stage that filled it (-1: a checkpoint from before it was recorded).
            self.semantic_denoiser = copy.deepcopy(denoiser).requires_grad_(False)
            self.register_buffer('semantic_initialized', torch.zeros((), dtype=torch.bool))
            self.register_buffer('semantic_stage', torch.full((), -1, dtype=torch.long))
        self.set_trainable(trainable)

    # -- structure ---------------------------------------------------------------------------
    @property
    def backbone(self):
        return self.perception.backbone

    @property
    def teacher_denoiser(self):
        """The denoiser the teacher p(y|x) runs on (``teacher_weights``)."""
        return self.semantic_denoiser if self.teacher_weights == 'semantic' else self.denoiser

    def teacher_step_adjust(self):
        """The adjustment the teacher's reverse steps apply (``teacher_adjust``): the model's
        :meth:`reverse_step_adjust` on the posterior's schedule, or ``None``."""
        return (self.reverse_step_adjust(self.posterior.schedule)
                if self.teacher_adjust else None)

    @property
    def denoiser(self):
        """The one denoiser module, shared by perception, distillation and generation."""
        return self.perception.backbone.denoiser

    def set_trainable(self, patterns: Optional[Sequence[str]]) -> List[str]:
        """Freeze every parameter whose name matches none of ``patterns`` (``None``: train all,
        except the semantic EMA copy and a frozen VAE). Returns the trainable names."""
        if patterns is not None:
            compiled = [re.compile(p) for p in patterns]
            matched = set()
            for name, param in self.named_parameters():
                if name.startswith('semantic_denoiser.'):
                    continue
                hit = [p.pattern for p in compiled if p.search(name)]
                param.requires_grad_(bool(hit))
                matched.update(hit)
            unused = [p.pattern for p in compiled if p.pattern not in matched]
            if unused:
                raise ValueError(f'GenRep: trainable patterns {unused} match no parameter')
        return [n for n, p in self.named_parameters() if p.requires_grad]

    # -- the reverse step of the generative model -------------------------------------------
    def reverse_step_adjust(self, schedule: DiffusionSchedule):
        """The semantic adjustment of the reverse step at inference (Eq. 6-9 with x_sem := x_t)
        on ``schedule``'s steps, as a ``DiffusionSchedule.p_sample`` hook, or ``None`` when the
        model has none."""
        return None if self.semantic_noise is None else self.semantic_noise.step_hook(schedule)

    # -- perception (Eq. 5) ------------------------------------------------------------------
    def perception_step(self, inputs: Tensor, data_samples) -> PerceptionLoss:
        """L_percept (Eq. 5): the task loss, from one forward of the task head, plus L_gen_distil
        (Eq. 4) on the first ``distill_images`` images."""
        out = self.task.forward_train(self.perception, inputs, data_samples,
                                      with_scores=self.posterior is not None)
        if self.posterior is None:
            return perception_loss(out.losses)
        generators = sample_generators(data_samples, inputs.shape[0], TEACHER_STREAM,
                                       inputs.device)
        with DenoiserCost(self.teacher_denoiser) as teacher:
            distil = self.generative_distillation(inputs, out.scores, generators,
                                                  sample_keys(data_samples, inputs.shape[0]))
        # Logged, not optimised (no 'loss' in the names): what the teacher cost this step.
        cost = dict(teacher_evals=torch.tensor(float(teacher.evaluations)),
                    teacher_time=torch.tensor(teacher.seconds))
        return perception_loss({**out.losses, **cost}, distil)

    def num_distilled(self, batch: int) -> int:
        """How many images of this process's batch of ``batch`` get a teacher: those among the
        first ``distill_images`` of the global batch (:func:`local_share`)."""
        return local_share(self.distill_images, batch)

    def num_generated(self, batch: int) -> int:
        """How many images of this process's batch of ``batch`` enter the generation loss: those
        among the first ``generation_images`` of the global batch (:func:`local_share`)."""
        return local_share(self.generation_images, batch)

    def generative_distillation(self, inputs: Tensor, scores, generator=None,
                                keys: Optional[Sequence[int]] = None) -> Tensor:
        """L_gen_distil (Eq. 4): KL(p || q) of the teacher p(y|x) (Eq. 2-3, no gradient) and the
        student's scores, on this process's share of the first ``distill_images`` images of the
        global batch (:meth:`num_distilled`). ``generator``: the teacher's noise, the batch's
        ``SampleGenerators`` (what training passes) or a ``torch.Generator``; ``None``: the
        posterior's own seed. ``keys``: the images' dataset indices, the teacher cache's keys
        (``None``: the batch positions)."""
        batch = inputs.shape[0]
        n = self.num_distilled(batch)
        if n == 0:  # the divisor is still summed over processes: every process must take part
            distillation_avg_factor(scores.logits.new_zeros(0), 0, batch)
            return scores.logits.sum() * 0.0
        scores = first_images(scores, n)
        if isinstance(generator, SampleGenerators):
            generator = generator.first(n)
        with torch.no_grad():
            latents = self.backbone.encode(inputs[:n])
            extra = {} if generator is None else dict(generator=generator)
            adjust = self.teacher_step_adjust()
            if adjust is not None:
                extra['adjust'] = adjust
            if self.teacher_cache is not None:
                extra.update(cache=self.teacher_cache, iteration=step_key()[1],
                             cache_keys=list(keys if keys is not None else range(batch))[:n])
            targets = distillation_targets(self.posterior, self.teacher_denoiser, latents, scores,
                                           self.num_candidates, inputs.shape[-2:], **extra)
        return self.distill_loss(
            targets.teacher,
            targets.logits,
            targets.candidates,
            weight=targets.weight,
            avg_factor=distillation_avg_factor(targets.weight, n, batch))

    # -- generation (Eq. 6-10) ---------------------------------------------------------------
    def semantic_adjust(self, mean: Tensor, log_variance: Tensor, x_t: Tensor, index: Tensor,
                        timesteps: Tensor, class_labels: Tensor):
        """The semantic adjustment of the reverse step in training (Eq. 6-9), a
        ``training_losses`` hook: x_sem is the EMA semantic denoiser's predicted x_0 at
        (x_t, t, y), in x_t's space (so that x_sem := x_t at inference fits)."""
        x_sem = predicted_xstart(self.schedule, self.semantic_denoiser, x_t, index, timesteps,
                                 class_labels)
        return self.semantic_noise(mean, log_variance, x_t, timesteps, x_sem)

    @torch.no_grad()
    def semantic_target(self, x0: Tensor) -> Tensor:
        """x_sem that the representation alignment targets (Eq. 10): the EMA semantic denoiser's
        deepest decoder feature of the clean input at t = 0, the perception representation (the
        pass ends at that feature: the decoder blocks above it would run for nothing)."""
        return self.semantic_denoiser.forward_feature(x0, 0, None, index=-1)

    def generation_step(self, inputs: Tensor, data_samples) -> GenerationLoss:
        """L_genera (Eq. 10) on the same images: the diffusion loss with the semantic adjustment
        of the reverse step in its variational-bound term, plus the representation alignment to
        x_sem."""
        n = self.num_generated(inputs.shape[0])
        if n == 0:
            raise ValueError(f'GenRep: generation_images={self.generation_images} leaves no image '
                             f'of the generation loss to this process; every process needs one '
                             f'(at least {get_dist_info()[1]})')
        # The loss is a mean over this process's n images and DDP averages the W processes, which
        # weighs every image of the global count alike only when each process holds count / W;
        # where a budget splits unevenly, the local mean is scaled by n W / count.
        world_size = get_dist_info()[1]
        count = min(self.generation_images or inputs.shape[0] * world_size,
                    inputs.shape[0] * world_size)
        share = n * world_size / count
        inputs = inputs[:n]
        data_samples = data_samples[:n] if data_samples is not None else None
        x0 = self.backbone.encode(inputs).detach()
        null_class = self.denoiser.null_class_id
        labels = self.task.generation_labels(data_samples, null_class, x0.device)
        # Label dropout, timestep and noise: drawn per sample (see the module docstring).
        generators = sample_generators(data_samples, x0.shape[0], GENERATION_STREAM, x0.device)
        diffusion = training_losses(
            self.schedule, self.denoiser, x0, labels, generators, null_class,
            label_dropout=self.label_dropout, vlb_weight=self.vlb_weight,
            decoder='continuous' if self.backbone.vae is not None else 'discretized',
            adjust=self.semantic_adjust if self.semantic_noise is not None else None,
            eps_loss=self.eps_loss)
        rep_align = None
        if self.rep_align is not None:
            rep_align = self.rep_align(diffusion.features[-1], self.semantic_target(x0))
        loss = generation_loss(diffusion.mse, diffusion.vlb, rep_align)
        return loss if share == 1 else loss.scaled(share)

    # -- mmengine interface ------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Objective]:
        """The objectives of the stage by name: Eq. 5 (stages 1, 2) and Eq. 10 (0, 2)."""
        objectives = {}
        if self.stage >= 1:
            objectives[PERCEPTION] = self.perception_step(inputs, data_samples)
        if self.stage != 1:
            objectives[GENERATION] = self.generation_step(inputs, data_samples)
        return objectives

    def parse_losses(self, losses: Dict[str, Objective]):
        """Stage 0 / 1: the generation / perception loss (a tensor). Stage 2:
        ``dict(percept=L_percept, genera=L_genera)`` for the gradient alignment (Eq. 11-16).
        Logged: each term as ``<objective>_<term>``, each objective's total and their sum
        ``loss``."""
        totals = {name: objective.total for name, objective in losses.items()}
        log_vars = {}
        for name, objective in losses.items():
            log_vars.update({f'{name}_{term}': value
                             for term, value in objective.log_vars().items()})
            log_vars[f'loss_{name}'] = totals[name].detach()
        log_vars['loss'] = sum(totals.values()).detach()
        if self.stage < 2:
            return totals[GENERATION if self.stage == 0 else PERCEPTION], log_vars
        return totals, log_vars

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.perception(inputs, data_samples, mode=mode)

    # -- generation at inference -------------------------------------------------------------
    @torch.no_grad()
    def sample_classes(self,
                       classes: Sequence[int],
                       per_class: int,
                       num_steps: Optional[int] = None,
                       seed: int = 0,
                       batch_size: Optional[int] = None,
                       **sampling):
        """``per_class`` samples of each of ``classes``, class-major, drawn with ``num_steps``
        respaced steps (``None``: all training steps) from one generator seeded ``seed``, in
        chunks of ``batch_size`` (``None``: one chunk); ``sampling``: sampler, eta,
        guidance_scale of :meth:`sample`. Returns (images [N, C, H, W] on the CPU, labels [N])."""
        labels = torch.as_tensor(list(classes)).long().repeat_interleave(per_class)
        schedule = self.schedule.respace(num_steps) if num_steps else self.schedule
        device = next(self.denoiser.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        chunks = labels.split(batch_size or max(len(labels), 1))
        images = [self.sample(chunk.to(device), schedule, generator=generator, **sampling).cpu()
                  for chunk in chunks]
        return torch.cat(images), labels

    @torch.no_grad()
    def sample(self,
               class_labels: Tensor,
               schedule: Optional[DiffusionSchedule] = None,
               generator: Optional[torch.Generator] = None,
               latent_shape: Optional[Sequence[int]] = None,
               sampler: str = 'ddpm',
               eta: float = 0.0,
               guidance_scale: float = 1.0) -> Tensor:
        """Class-conditional samples by the reverse chain (Eq. 1, ``sample_chain``), with the
        semantic adjustment of Eq. 6-9 where x_sem := x_t (inference, Sec. 3.2). Returns images
        (VAE-decoded when the backbone has a VAE) [N, C, H, W] in the denoiser's range.

        Args:
            class_labels: [N] classes to draw.
            schedule: the (respaced) sampling schedule; default: the training one.
            generator: for reproducible samples.
            latent_shape: (C, H, W) of x_T; default: the denoiser's configured sample size.
            sampler: 'ddpm' (ancestral, with the adjustment) or 'ddim' (models without the
                semantic adjustment: DDIM steps have no reverse-step variance to adjust).
            eta: DDIM's noise scale.
            guidance_scale: classifier-free guidance against the null class (1: unguided).
        """
        schedule = schedule or self.schedule
        adjust = self.reverse_step_adjust(schedule)
        if sampler == 'ddim' and adjust is not None:
            raise ValueError("GenRep.sample: sampler='ddim' cannot apply this model's semantic "
                             "adjustment of the reverse step (Eq. 6-9); use sampler='ddpm'")
        return generate(self.denoiser, class_labels, schedule, vae=self.backbone.vae,
                        generator=generator, latent_shape=latent_shape, adjust=adjust,
                        sampler=sampler, eta=eta, guidance_scale=guidance_scale)


def _build_in_genrep_scope(registry, cfg: dict):
    """Build from one of genrep's own registries (no OpenMMLab parent) in genrep's scope, whatever
    the config's default scope (mmengine would otherwise search the default scope's tree first and
    warn that it fell back)."""
    return registry.build({'_scope_': 'genrep', **cfg})

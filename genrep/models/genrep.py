"""GenRep: a perception model and a generation branch that share one denoiser (Sec. 3.2-3.3).

The perception model is any stock OpenMMLab model whose backbone is a :class:`DiffusionBackbone`
(classification through mmpretrain's ``ImageClassifier`` for now; dense tasks get their own thin
adapters). The denoiser exists once, inside that backbone; the generation branch, the posterior
estimator and the semantic EMA copy all work on that module.

One training step (``loss``) returns

* the perception loss, Eq. 5: the task loss plus L_gen_distil (Eq. 4), the KL from the diffusion
  posterior p(y|x) (Eq. 2-3, teacher, no gradient) to the head's q(y|x);
* in stage 2, the generation loss, Eq. 10: the diffusion loss (noise MSE, plus the variational-bound
  term that trains the variance and the semantic adjustment of the reverse step, Eq. 6-9) and the
  representation alignment loss to x_sem, the EMA semantic denoiser's perception features.

``parse_losses`` hands the two losses to the optim wrapper separately (``dict(percept=..., genera=...)``,
what ``GradientAlignOptimWrapper`` aligns, Eq. 11-16); in stage 1 it returns the perception loss
alone, so a plain ``OptimWrapper`` works.
"""
import copy
import math
import re
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from genrep.diffusion.posteriors import candidate_classes
from genrep.diffusion.schedule import DiffusionSchedule, gaussian_log_density
from genrep.registry import DIFFUSION_SCHEDULERS, MODELS, POSTERIORS

TASKS = ('percept', 'genera')


def normal_kl(mean1: Tensor, log_var1: Tensor, mean2: Tensor, log_var2: Tensor) -> Tensor:
    """Elementwise KL(N(mean1, e^log_var1) || N(mean2, e^log_var2)) in nats; broadcasting."""
    return 0.5 * (-1.0 + log_var2 - log_var1 + torch.exp(log_var1 - log_var2) +
                  (mean1 - mean2)**2 * torch.exp(-log_var2))


@MODELS.register_module()
class GenRep(BaseModel):
    """GenRep on top of a perception model.

    Args:
        perception: config of the perception model (its backbone a ``genrep.DiffusionBackbone``).
            Its data preprocessor (``data_preprocessor`` when given) serves GenRep.
        stage: 0 = generative pretraining, the diffusion loss alone: the stand-in for the pretrained
            LDM/DiT the paper starts from, where no such checkpoint exists (the embedded data);
            1 = perception only (Eq. 5); 2 = joint perception and generation (Eq. 5 and 10),
            usually with ``load_from`` a stage-1 checkpoint.
        schedule: ``DiffusionSchedule`` config of the training diffusion (all T steps).
        posterior: ``POSTERIORS`` config of the teacher p(y|x) (Eq. 2-3); ``None``: no L_gen_distil.
        distill_loss: config of the distillation loss (Eq. 4).
        num_candidates: budget: the teacher covers the head's top ``num_candidates`` classes plus
            the true one (the KL is taken over that subset, renormalised); ``None``: all classes.
        distill_images: budget: the teacher is estimated for the first ``distill_images`` images
            of the batch only; ``None``: all.
        semantic_noise: ``SemanticNoiseAdjuster`` config (Eq. 6-9), stage 2; ``None``: off.
        rep_align: ``RepAlignLoss`` config (Eq. 10), stage 2; ``None``: off. ``in_channels`` and
            ``target_channels`` default to the denoiser's deepest decoder feature.
        vlb_weight: weight of the variational-bound term of the diffusion loss (improved DDPM's
            hybrid loss uses 0.001 with 4000 steps; it is the only loss of the variance and of the
            semantic adjustment).
        label_dropout: probability of training the denoiser on the null class (classifier-free).
        trainable: regular expressions over parameter names (``perception.backbone...``); only
            matching parameters train. ``None``: all. Paper: attention blocks and heads.
        data_preprocessor, init_cfg: as for any mmengine model.
    """

    def __init__(self,
                 perception: dict,
                 stage: int = 1,
                 schedule: Optional[dict] = None,
                 posterior: Optional[dict] = None,
                 distill_loss: Optional[dict] = None,
                 num_candidates: Optional[int] = None,
                 distill_images: Optional[int] = None,
                 semantic_noise: Optional[dict] = None,
                 rep_align: Optional[dict] = None,
                 vlb_weight: float = 1.0,
                 label_dropout: float = 0.1,
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
        self.stage = stage
        self.schedule: DiffusionSchedule = DIFFUSION_SCHEDULERS.build(
            schedule or dict(type='DiffusionSchedule'))
        self.posterior = POSTERIORS.build(posterior) if posterior is not None else None
        self.distill_loss = MODELS.build(
            {'_scope_': 'genrep', **(distill_loss or dict(type='GenerativeDistillationLoss'))})
        self.num_candidates = num_candidates
        self.distill_images = distill_images
        self.vlb_weight = vlb_weight
        self.label_dropout = label_dropout

        self.semantic_noise = None
        self.rep_align = None
        self.semantic_denoiser = None
        if stage != 2 and (semantic_noise is not None or rep_align is not None):
            raise ValueError(f'GenRep: semantic_noise and rep_align belong to stage 2 (they need '
                             f'the semantic denoiser of stage 1), got them with stage={stage}')
        if stage == 2:
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
            # when training starts (SemanticEMAHook) and saved with the checkpoints.
            self.semantic_denoiser = copy.deepcopy(denoiser).requires_grad_(False)
            self.register_buffer('semantic_initialized', torch.zeros((), dtype=torch.bool))
        self.set_trainable(trainable)

    # -- structure ---------------------------------------------------------------------------
    @property
    def backbone(self):
        return self.perception.backbone

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

    # -- perception (Eq. 5) ------------------------------------------------------------------
    def perception_losses(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """Task loss and L_gen_distil (Eq. 4) of an mmpretrain classifier."""
        feats = self.perception.extract_feat(inputs)
        head = self.perception.head
        losses = {f'percept.{k}': v for k, v in head.loss(feats, data_samples).items()}
        if self.posterior is None:
            return losses
        logits = head(feats)
        labels = torch.cat([s.gt_label for s in data_samples]).to(logits.device)
        n = len(labels) if self.distill_images is None else min(self.distill_images, len(labels))
        with torch.no_grad():
            x0 = self.backbone.encode(inputs[:n])
            candidates = None
            if self.num_candidates is not None:
                candidates = candidate_classes(logits[:n].detach(), self.num_candidates,
                                               labels[:n])
            teacher = self.posterior.posterior(self.denoiser, x0, candidates)
        losses['percept.loss_gen_distil'] = self.distill_loss(teacher, logits[:n], candidates)
        return losses

    # -- generation (Eq. 6-10) ---------------------------------------------------------------
    @torch.no_grad()
    def semantic_guidance(self, x_t: Tensor, index: Tensor, timesteps: Tensor,
                          class_labels: Tensor) -> Tensor:
        """x_sem that steers the reverse step (Eq. 6-9): the EMA semantic denoiser's predicted
        x_0 at (x_t, t, y), in x_t's space (so that x_sem := x_t at inference fits)."""
        sem = self.semantic_denoiser
        eps, _ = sem.split_output(sem(x_t, timesteps, class_labels))
        return self.schedule.predict_xstart_from_eps(x_t, index, eps)

    @torch.no_grad()
    def semantic_target(self, x0: Tensor) -> Tensor:
        """x_sem that the representation alignment targets (Eq. 10): the EMA semantic denoiser's
        deepest decoder feature of the clean input at t = 0, the perception representation."""
        return self.semantic_denoiser.forward_features(x0, 0, None).features[-1]

    def generation_losses(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """L_genera (Eq. 10) on the same images: diffusion loss with the semantic adjustment of
        the reverse step, plus the representation alignment to x_sem."""
        x0 = self.backbone.encode(inputs).detach()
        batch = x0.shape[0]
        labels = torch.cat([s.gt_label for s in data_samples]).to(x0.device)
        drop = torch.rand(batch, device=x0.device) < self.label_dropout
        labels = torch.where(drop, torch.full_like(labels, self.denoiser.null_class_id), labels)
        index = torch.randint(0, self.schedule.num_steps, (batch, ), device=x0.device)
        timesteps = self.schedule.timesteps.to(x0.device)[index]
        noise = torch.randn_like(x0)
        x_t = self.schedule.q_sample(x0, index, noise)

        out = self.denoiser.forward_features(x_t, timesteps, labels)
        losses = {'genera.loss_diffusion': F.mse_loss(out.eps, noise)}
        if self.vlb_weight > 0 and (out.var_values is not None or self.semantic_noise is not None):
            output = out.eps.detach() if out.var_values is None else torch.cat(
                [out.eps.detach(), out.var_values], dim=1)
            step = self.schedule.p_mean_variance(output, x_t, index)
            mean, log_var = step['mean'], step['log_variance']
            if self.semantic_noise is not None:
                x_sem = self.semantic_guidance(x_t, index, timesteps, labels)
                mean, log_var = self.semantic_noise(mean, log_var, x_t, timesteps, x_sem)
            true_mean = self.schedule.q_posterior_mean(x0, x_t, index)
            true_log_var = self.schedule.q_posterior_log_variance(index, x0)
            kl = normal_kl(true_mean, true_log_var, mean, log_var).flatten(1).mean(1)
            nll = -gaussian_log_density(x0, mean, log_var).flatten(1).mean(1)
            vlb = torch.where(index == 0, nll, kl) / math.log(2.0)
            losses['genera.loss_vlb'] = self.vlb_weight * vlb.mean()
        if self.rep_align is not None:
            losses['genera.loss_rep_align'] = self.rep_align(out.features[-1],
                                                             self.semantic_target(x0))
        return losses

    # -- mmengine interface ------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        losses = {}
        if self.stage >= 1:
            losses.update(self.perception_losses(inputs, data_samples))
        if self.stage != 1:
            losses.update(self.generation_losses(inputs, data_samples))
        return losses

    def parse_losses(self, losses: Dict[str, Tensor]):
        """Stage 0 / 1: the generation / perception loss (a tensor). Stage 2:
        ``dict(percept=L_percept, genera=L_genera)`` for the gradient alignment (Eq. 11-16)."""
        log_vars = []
        totals = {task: [] for task in TASKS}
        for name, value in losses.items():
            task, _, short = name.partition('.')
            value = value.mean()
            log_vars.append([f'{task}_{short}', value])
            if 'loss' in short:
                totals[task].append(value)
        parsed = {task: sum(values) for task, values in totals.items() if values}
        for task, value in parsed.items():
            log_vars.append([f'loss_{task}', value])
        log_vars.append(['loss', sum(parsed.values())])
        log_vars = {name: value.detach() for name, value in log_vars}
        if self.stage < 2:
            return parsed['genera' if self.stage == 0 else 'percept'], log_vars
        return parsed, log_vars

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
                       batch_size: Optional[int] = None):
        """``per_class`` samples of each of ``classes``, class-major, drawn with ``num_steps``
        respaced steps (``None``: all training steps) from one generator seeded ``seed``, in
        chunks of ``batch_size`` (``None``: one chunk). Returns (images [N, C, H, W] on the CPU,
        labels [N])."""
        labels = torch.as_tensor(list(classes)).long().repeat_interleave(per_class)
        schedule = self.schedule.respace(num_steps) if num_steps else self.schedule
        device = next(self.denoiser.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        chunks = labels.split(batch_size or max(len(labels), 1))
        images = [self.sample(chunk.to(device), schedule, generator=generator).cpu()
                  for chunk in chunks]
        return torch.cat(images), labels

    @torch.no_grad()
    def sample(self,
               class_labels: Tensor,
               schedule: Optional[DiffusionSchedule] = None,
               generator: Optional[torch.Generator] = None,
               latent_shape: Optional[Sequence[int]] = None) -> Tensor:
        """Class-conditional samples by the reverse chain (Eq. 1), with the semantic adjustment of
        Eq. 6-9 where x_sem := x_t (inference, Sec. 3.2). Returns images (VAE-decoded when the
        backbone has a VAE) [N, C, H, W] in the denoiser's range.

        Args:
            class_labels: [N] classes to draw.
            schedule: the (respaced) sampling schedule; default: the training one.
            generator: for reproducible samples.
            latent_shape: (C, H, W) of x_T; default: the denoiser's configured sample size.
        """
        schedule = schedule or self.schedule
        denoiser = self.denoiser
        device = next(denoiser.parameters()).device
        if latent_shape is None:
            size = denoiser.model.config.sample_size
            size = (size, size) if isinstance(size, int) else tuple(size)
            latent_shape = (denoiser.in_channels, *size)
        labels = torch.as_tensor(class_labels, device=device).long()
        x = torch.randn((len(labels), *latent_shape), generator=generator, device=device)
        for index in range(schedule.num_steps - 1, -1, -1):
            t = int(schedule.timesteps[index])
            step = schedule.p_mean_variance(denoiser(x, t, labels), x, index)
            mean, log_var = step['mean'], step['log_variance']
            if self.semantic_noise is not None:
                mean, log_var = self.semantic_noise(mean, log_var, x, t)
            if index == 0:
                x = mean
            else:
                noise = torch.randn(x.shape, generator=generator, device=device)
                x = mean + torch.exp(0.5 * log_var) * noise
        vae = self.backbone.vae
        if vae is not None:
            x = vae.decode(x / vae.config.scaling_factor).sample
        return x

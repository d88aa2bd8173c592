"""GenRep's two training objectives, Eq. 5 and Eq. 10, as named terms.

Each function returns a small dataclass of the equation's terms. ``GenRep.parse_losses`` hands
each objective's ``total`` to the optim wrapper under its name (``genrep.utils.OBJECTIVES``) and
logs ``log_vars``; nothing parses loss names.
"""
from dataclasses import dataclass, fields
from typing import Dict, Optional

from torch import Tensor


def _is_optimised(name: str) -> bool:
    """mm convention: a task-loss entry is optimised iff its name holds 'loss' (others, such as
    an accuracy, are logged only)."""
    return 'loss' in name


@dataclass
class PerceptionLoss:
    """The terms of L_percept (Eq. 5).

    Attributes:
        task: the task's discriminative loss terms by name (L_task); entries without 'loss' in
            their name are logged, not optimised.
        gen_distil: L_gen_distil (Eq. 4), or ``None`` without a teacher.
    """
    task: Dict[str, Tensor]
    gen_distil: Optional[Tensor] = None

    @property
    def total(self) -> Tensor:
        terms = [value.sum() for name, value in self.task.items() if _is_optimised(name)]
        if self.gen_distil is not None:
            terms.append(self.gen_distil)
        if not terms:
            raise ValueError(f'perception loss: the task returned no loss term (names holding '
                             f"'loss'), got {sorted(self.task)}")
        return sum(terms)

    def log_vars(self) -> Dict[str, Tensor]:
        logged = {name: value.detach().sum() for name, value in self.task.items()}
        if self.gen_distil is not None:
            logged['loss_gen_distil'] = self.gen_distil.detach()
        return logged


@dataclass
class GenerationLoss:
    """The terms of L_genera (Eq. 10).

    Attributes:
        diffusion: the noise-prediction MSE (the 'simple' diffusion loss).
        vlb: the variational-bound term (improved DDPM's hybrid loss): the only loss of the learned
            variance and of the semantic adjustment of the reverse step (Eq. 6-9); ``None`` when
            neither exists.
        rep_align: L_rep.align (Eq. 10), or ``None`` without it.
    """
    diffusion: Tensor
    vlb: Optional[Tensor] = None
    rep_align: Optional[Tensor] = None

    def terms(self) -> Dict[str, Tensor]:
        return {f'loss_{f.name}': getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @property
    def total(self) -> Tensor:
        return sum(self.terms().values())

    def log_vars(self) -> Dict[str, Tensor]:
        return {name: value.detach() for name, value in self.terms().items()}

    def scaled(self, factor: float) -> 'GenerationLoss':
        """Every term times ``factor`` (a budget's reweighting, ``GenRep.generation_step``)."""
        return GenerationLoss(**{f.name: None if getattr(self, f.name) is None else
                                 getattr(self, f.name) * factor for f in fields(self)})


def perception_loss(task_losses: Dict[str, Tensor],
                    gen_distil: Optional[Tensor] = None) -> PerceptionLoss:
    """Eq. 5: L_percept = L_task + L_gen_distil, the distillation term already weighted (its
    ``loss_weight`` is the lambda of Eq. 5)."""
    return PerceptionLoss(task=dict(task_losses), gen_distil=gen_distil)


def generation_loss(diffusion: Tensor,
                    vlb: Optional[Tensor] = None,
                    rep_align: Optional[Tensor] = None) -> GenerationLoss:
    """Eq. 10: L_genera = L_diffusion + lambda L_rep.align, where L_diffusion is the noise MSE plus
    the (weighted) variational-bound term; each term already weighted."""
    return GenerationLoss(diffusion=diffusion, vlb=vlb, rep_align=rep_align)

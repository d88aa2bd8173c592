from .generative_distillation import (GenerativeDistillationLoss, candidate_logits,
                                      generative_distillation_kl)
from .rep_align import RepAlignLoss, projector_mlp, representation_alignment_loss

__all__ = [
    'GenerativeDistillationLoss', 'generative_distillation_kl', 'candidate_logits', 'RepAlignLoss',
    'projector_mlp', 'representation_alignment_loss'
]

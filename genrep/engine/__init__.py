"""Training machinery: optim wrappers and hooks registered in genrep's registries;
``genrep.registry`` imports this package lazily."""
from .hooks import GenerationEvalHook, SemanticEMAHook, semantic_ema_update
from .optim_wrappers import (AmpGradientAlignOptimWrapper, GradientAlignment,
                             GradientAlignOptimWrapper, aligned_gradient, gradient_cosine,
                             parallel_orthogonal_split, retention_factor,
                             symmetric_aligned_gradient)

__all__ = [
    'GradientAlignOptimWrapper', 'AmpGradientAlignOptimWrapper', 'GradientAlignment',
    'parallel_orthogonal_split', 'gradient_cosine', 'retention_factor', 'aligned_gradient',
    'symmetric_aligned_gradient', 'SemanticEMAHook', 'semantic_ema_update',
    'GenerationEvalHook'
]

"""Training machinery: optim wrappers and hooks registered in genrep's registries;
``genrep.registry`` imports this package lazily."""
from .atomic_files import AtomicLocalBackend, AtomicWriteError, write_atomically
from .checkpoints import (CheckpointError, CheckpointHook, find_resumable_checkpoint,
                          read_last_checkpoint, verify_checkpoint)
from .fsdp import size_based_auto_wrap_policy
from .guards import NonFiniteCheckHook
from .hooks import GenerationEvalHook, SemanticEMAHook, semantic_ema_update
from .optim_wrappers import (AmpGradientAlignOptimWrapper, GradientAlignment,
                             GradientAlignOptimWrapper, aligned_gradient, gradient_cosine,
                             parallel_orthogonal_split, retention_factor,
                             symmetric_aligned_gradient)
from .preemption import PREEMPTED_EXIT_CODE, PreemptionHook
from .resume import (RandomStateHook, ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop,
                     capture_random_states, restore_random_states)
from .teacher_cost_hook import TeacherCostHook
from .teacher_interval_hook import TeacherIntervalHook
from .vocabulary_hook import OpenVocabularyHook

__all__ = [
    'OpenVocabularyHook', 'TeacherCostHook', 'TeacherIntervalHook',
    'GradientAlignOptimWrapper', 'AmpGradientAlignOptimWrapper', 'GradientAlignment',
    'parallel_orthogonal_split', 'gradient_cosine', 'retention_factor', 'aligned_gradient',
    'symmetric_aligned_gradient', 'SemanticEMAHook', 'semantic_ema_update',
    'GenerationEvalHook', 'CheckpointHook', 'CheckpointError', 'find_resumable_checkpoint',
    'read_last_checkpoint', 'verify_checkpoint', 'NonFiniteCheckHook', 'RandomStateHook',
    'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop', 'capture_random_states',
    'restore_random_states', 'size_based_auto_wrap_policy', 'PreemptionHook',
    'PREEMPTED_EXIT_CODE', 'AtomicLocalBackend', 'AtomicWriteError', 'write_atomically'
]

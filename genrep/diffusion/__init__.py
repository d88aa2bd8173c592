from .denoisers import (DenoiserOutput, DiffusersDenoiser, DiTDenoiser, UNet2DConditionDenoiser,
                        UNet2DDenoiser)
from .posteriors import (DenoisingErrorPosterior, PosteriorEstimator, ReverseChainPosterior,
                         bayes_posterior, candidate_classes, denoising_error_log_likelihood,
                         mixture_log_likelihood, restrict_posterior)
from .reverse_chain import (ReverseStep, denoise_classes, kept_step_indices, reverse_chain,
                            reverse_chain_states)
from .schedule import DiffusionSchedule, gaussian_log_density
from .semantic_noise import (SemanticNoiseAdjuster, semantic_log_variance_scale,
                             semantic_mean_correction)

__all__ = [
    'DenoiserOutput', 'DiffusersDenoiser', 'DiTDenoiser', 'UNet2DConditionDenoiser',
    'UNet2DDenoiser', 'DiffusionSchedule', 'gaussian_log_density', 'ReverseStep',
    'kept_step_indices', 'denoise_classes', 'reverse_chain', 'reverse_chain_states',
    'PosteriorEstimator', 'ReverseChainPosterior', 'DenoisingErrorPosterior',
    'mixture_log_likelihood', 'bayes_posterior', 'restrict_posterior', 'candidate_classes',
    'denoising_error_log_likelihood', 'SemanticNoiseAdjuster', 'semantic_mean_correction',
    'semantic_log_variance_scale'
]

from .cost import DenoiserCost
from .denoisers import (DenoiserOutput, DiffusersDenoiser, DiTDenoiser, UNet2DConditionDenoiser,
                        UNet2DDenoiser)
from .posteriors import (DenoisingErrorPosterior, PosteriorEstimator, ReverseChainPosterior,
                         bayes_posterior, candidate_classes, denoising_error_log_likelihood,
                         mixture_log_likelihood, restrict_posterior)
from .generation import generate, sample_shape
from .reverse_chain import (ChainArguments, ReverseStep, chain_length, denoise_classes,
                            kept_step_indices, reverse_chain, reverse_chain_states, reverse_steps,
                            sample_chain)
from .sample_generators import SampleGenerators, draw_normal, key_seed
from .schedule import (DiffusionSchedule, StepAdjust, approx_standard_normal_cdf,
                       discretized_gaussian_log_likelihood, gaussian_log_density, normal_kl)
from .semantic_noise import (SemanticNoiseAdjuster, semantic_log_variance_scale,
                             semantic_mean_correction)
from .training_losses import DiffusionTrainingLosses, predicted_xstart, training_losses

__all__ = [
    'DenoiserCost', 'DenoiserOutput', 'DiffusersDenoiser', 'DiTDenoiser', 'UNet2DConditionDenoiser',
    'UNet2DDenoiser', 'DiffusionSchedule', 'StepAdjust', 'gaussian_log_density', 'normal_kl',
    'approx_standard_normal_cdf', 'discretized_gaussian_log_likelihood', 'ReverseStep',
    'kept_step_indices', 'chain_length', 'denoise_classes', 'reverse_steps', 'reverse_chain',
    'reverse_chain_states', 'sample_chain', 'ChainArguments', 'generate', 'sample_shape',
    'training_losses', 'DiffusionTrainingLosses', 'predicted_xstart',
    'PosteriorEstimator', 'ReverseChainPosterior', 'DenoisingErrorPosterior',
    'mixture_log_likelihood', 'bayes_posterior', 'restrict_posterior', 'candidate_classes',
    'denoising_error_log_likelihood', 'SemanticNoiseAdjuster', 'semantic_mean_correction',
    'semantic_log_variance_scale', 'SampleGenerators', 'draw_normal', 'key_seed'
]

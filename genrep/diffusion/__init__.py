from .denoisers import (DenoiserOutput, DiffusersDenoiser, DiTDenoiser, UNet2DConditionDenoiser,
                        UNet2DDenoiser)

__all__ = [
    'DenoiserOutput', 'DiffusersDenoiser', 'DiTDenoiser', 'UNet2DConditionDenoiser',
    'UNet2DDenoiser'
]

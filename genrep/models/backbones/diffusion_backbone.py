"""DiffusionBackbone: a diffusion denoiser as the backbone of an OpenMMLab perception model.

Following VPD (Zhao et al., 2023) and Sec. 3.1 of the paper: the image is (optionally) encoded to
latents by a VAE, passed once through the denoiser at a fixed timestep (t = 0: no noise) with the
null class as condition, and the activations of four decoder blocks are the multi-scale features an
FPN neck aggregates. The denoiser module is kept as ``self.denoiser`` so that the generation branch of
GenRep can hold a reference to the very same module.
"""
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
from diffusers import AutoencoderKL, VQModel
from mmengine.model import BaseModule
from torch import Tensor

from genrep.diffusion.denoisers import DiffusersDenoiser, build_diffusers_model
from genrep.registry import MODELS
from ..heads.vocabulary import dataset_class_names
from ..text_encoders import encode_class_prompts


def class_prompt_context(denoiser: dict, class_prompts: dict) -> Tensor:
    """The initial class context of ``denoiser``'s config from ``class_prompts`` (see
    ``DiffusionBackbone``), checked against its ``num_classes``."""
    unknown = set(class_prompts) - {'pretrained', 'class_names', 'template'}
    if unknown or 'class_names' not in class_prompts or 'pretrained' not in class_prompts:
        raise KeyError(f'DiffusionBackbone: class_prompts needs pretrained and class_names (and '
                       f'optionally template), got {sorted(class_prompts)}')
    if not osp.isdir(class_prompts['pretrained']):
        # before the names, which may come from data files (a missing checkpoint comes first)
        raise FileNotFoundError(f"DiffusionBackbone: class_prompts.pretrained "
                                f"{class_prompts['pretrained']!r} is not a local directory "
                                '(a checkpoint folder with text_encoder/ and tokenizer/)')
    names = dataset_class_names(class_prompts['class_names'])
    if denoiser.get('num_classes') not in (None, len(names)):
        raise ValueError(f'DiffusionBackbone: class_prompts names {len(names)} classes but the '
                         f"denoiser's num_classes is {denoiser.get('num_classes')}")
    extra = {'template': class_prompts['template']} if 'template' in class_prompts else {}
    return encode_class_prompts(class_prompts['pretrained'], names, **extra)


FIRST_STAGES = {'AutoencoderKL': AutoencoderKL, 'VQModel': VQModel}


def build_first_stage(type: str = 'AutoencoderKL', scaling_factor: Optional[float] = None,
                      **build_args):
    """The diffusers first stage of ``DiffusionBackbone``'s ``vae`` config (its docstring)."""
    if type not in FIRST_STAGES:
        raise KeyError(f'DiffusionBackbone: vae.type={type!r}; expected one of '
                       f'{sorted(FIRST_STAGES)}')
    model = build_diffusers_model(FIRST_STAGES[type], **build_args)
    if scaling_factor is not None:
        # The config is what GenRep.sample reads to undo the scale before decoding.
        model.register_to_config(scaling_factor=scaling_factor)
    return model


@MODELS.register_module()
class DiffusionBackbone(BaseModule):
    """Multi-scale decoder features of a diffusers denoiser.

    Args:
        denoiser: config of a registered denoiser wrapper (``UNet2DDenoiser``,
            ``UNet2DConditionDenoiser`` or ``DiTDenoiser``), each built ``from_config`` or from a
            local ``pretrained`` directory.
        vae: optional ``dict(config=...)`` or ``dict(pretrained=..., subfolder=...)`` of the first
            stage: ``type='AutoencoderKL'`` (default; images are encoded to ``scaling_factor *
            mean`` of the latent posterior, deterministic) or ``type='VQModel'`` (the VQ-regularised
            first stage of LDM's VQ models: ``scaling_factor *`` the encoder's unquantised output,
            what LDM's VQModelInterface.encode returns; decoding quantises, as LDM's does), and
            optionally ``scaling_factor``, which replaces the checkpoint's (LDM's VQ models use 1,
            while diffusers' VQModel config defaults to 0.18215). ``None``: the denoiser works on
            pixels.
        timestep: diffusion timestep of the perception pass.
        out_indices: which of the denoiser's features (in increasing-stride order) to return.
        freeze_vae: keep the VAE frozen and in eval mode (it is never trained by GenRep).
        class_prompts: for a text-conditioned ``UNet2DConditionDenoiser`` (Stable Diffusion),
            ``dict(pretrained=<checkpoint folder with text_encoder/ and tokenizer/>,
            class_names=<list, or a registered dataset class such as 'mmseg.ADE20KDataset'>,
            template='a photograph of a {}.')``: the class table starts from the checkpoint's own
            text context of each class name (``encode_class_prompts``), the null class from the
            empty prompt. ``None``: a randomly initialised table. The denoiser's
            ``num_classes`` may be left ``None``: the names give it (a vocabulary read from
            files, such as LVIS's training classes).
        init_cfg: mmengine initialisation config.

    Input: images [B, C, H, W] normalised to the denoiser's range (usually [-1, 1]), with H and W
    multiples of ``size_divisor``. Output: a tuple of features [B, C_i, H / s_i, W / s_i] with
    ``C_i = out_channels[i]`` and ``s_i = out_strides[i]``, for an FPN neck or a pooling head.
    """

    def __init__(self,
                 denoiser: dict,
                 vae: Optional[dict] = None,
                 timestep: int = 0,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 freeze_vae: bool = True,
                 class_prompts: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if class_prompts is not None:
            context = class_prompt_context(denoiser, class_prompts)
            denoiser = dict(denoiser, class_context=context, num_classes=context.shape[0] - 1)
        # Built in genrep's scope, whatever the default scope of the enclosing config.
        self.denoiser: DiffusersDenoiser = MODELS.build({'_scope_': 'genrep', **denoiser})
        self.vae = build_first_stage(**vae) if vae is not None else None
        self.freeze_vae = freeze_vae
        if self.vae is not None and freeze_vae:
            self.vae.requires_grad_(False).eval()
        self.timestep = timestep
        available = len(self.denoiser.feature_strides)
        bad = [i for i in out_indices if not 0 <= i < available]
        if bad:
            raise ValueError(f'DiffusionBackbone: out_indices {bad} out of range; the denoiser has '
                             f'{available} decoder features')
        self.out_indices = tuple(out_indices)

    @property
    def vae_factor(self) -> int:
        """Down-sampling factor of the VAE encoder (1 without a VAE)."""
        if self.vae is None:
            return 1
        return 2**(len(self.vae.config.block_out_channels) - 1)

    @property
    def out_channels(self) -> Tuple[int, ...]:
        return tuple(self.denoiser.feature_channels[i] for i in self.out_indices)

    @property
    def out_strides(self) -> Tuple[int, ...]:
        """Strides of the returned features with respect to the input image."""
        return tuple(self.denoiser.feature_strides[i] * self.vae_factor for i in self.out_indices)

    @property
    def size_divisor(self) -> int:
        return self.denoiser.size_divisor * self.vae_factor

    def encode(self, images: Tensor) -> Tensor:
        """Images -> what the denoiser reads: VAE latents (scaled), or the images themselves."""
        if self.vae is None:
            return images
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_vae):
            encoded = self.vae.encode(images)
            latents = (encoded.latents if isinstance(self.vae, VQModel) else
                       encoded.latent_dist.mean)
        return latents * self.vae.config.scaling_factor

    def forward(self, images: Tensor, class_labels: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        height, width = images.shape[-2:]
        divisor = self.size_divisor
        if height % divisor or width % divisor:
            raise ValueError(
                f'DiffusionBackbone: input size {height}x{width} is not a multiple of '
                f'{divisor}; pad the images (e.g. a Pad transform or the data preprocessor\'s '
                f'size_divisor={divisor})')
        latents = self.encode(images)
        features = self.denoiser.forward_features(latents, self.timestep, class_labels).features
        return tuple(features[i] for i in self.out_indices)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.vae is not None and self.freeze_vae:
            self.vae.eval()
        return self

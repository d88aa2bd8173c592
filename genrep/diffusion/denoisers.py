"""Explicit wrappers of the diffusers denoisers GenRep builds on.

Each wrapper owns one diffusers model (``self.model``), used exactly as diffusers ships it, and adds:

* one calling convention for every kind, ``forward(x_t, t, class_labels) -> model output``, where the
  output is the predicted noise eps, with the learned-range variance values concatenated on channels
  when the model learns its variance (improved DDPM / DiT). The reverse chain and the posterior
  estimators only rely on this convention, so an analytic denoiser can stand in for a network in tests.
* ``forward_features(...)``, which returns a :class:`DenoiserOutput` with eps, the variance values and
  the decoder features, captured by forward hooks (never by replacing a diffusers ``forward``).
* a *null class*: ``class_labels=None`` means unconditional, encoded as the extra class index
  ``num_classes`` (the classifier-free-guidance row of DiT's label table). Perception passes use it.

Features are returned ordered by increasing stride (the OpenMMLab backbone convention), with their
strides and channels known statically (``feature_strides``, ``feature_channels``), so FPN necks can be
configured without a dry run.
"""
import functools
import inspect
import os
import os.path as osp
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DiTTransformer2DModel, UNet2DConditionModel, UNet2DModel
from torch import Tensor

from genrep.registry import MODELS


@dataclass
class DenoiserOutput:
    """What one denoiser pass produces.

    Attributes:
        eps: predicted noise, [B, C, H, W].
        var_values: learned-range variance interpolation values in [-1, 1] before mapping (improved
            DDPM, Eq. 15 of Nichol & Dhariwal), [B, C, H, W]; ``None`` for a fixed-variance model.
        features: decoder features ordered by increasing stride, each [B, C_i, H / s_i, W / s_i].
    """
    eps: Tensor
    var_values: Optional[Tensor]
    features: Tuple[Tensor, ...]


def load_local_pretrained(model_cls, path: str, subfolder: Optional[str] = None):
    """``model_cls.from_pretrained`` on a local diffusers directory; never a hub download.

    Raises:
        FileNotFoundError: ``path`` (or ``path/subfolder``) is not a local directory.
    """
    where = osp.join(path, subfolder) if subfolder else path
    if not osp.isdir(where):
        raise FileNotFoundError(
            f'pretrained: {where!r} is not a local directory; genrep loads diffusers weights only '
            f'from local folders (save them with `save_pretrained`), never from a hub')
    return model_cls.from_pretrained(path, subfolder=subfolder, local_files_only=True)


def build_diffusers_model(model_cls,
                          config: Optional[dict] = None,
                          pretrained: Optional[str] = None,
                          subfolder: Optional[str] = None):
    """A diffusers model from exactly one of a config dict (random init) or a local directory."""
    if (config is None) == (pretrained is None):
        raise ValueError(
            f'{model_cls.__name__}: give exactly one of `config` (a dict of its __init__ arguments) '
            f'or `pretrained` (a local diffusers directory), got config={config!r}, '
            f'pretrained={pretrained!r}')
    if pretrained is not None:
        return load_local_pretrained(model_cls, os.fspath(pretrained), subfolder)
    check_config_keys(model_cls, config)
    return model_cls.from_config(dict(config))


def check_config_keys(model_cls, config: dict) -> None:
    """Refuse keys that ``model_cls.__init__`` does not take (diffusers' ``from_config`` only warns
    and drops them, so a typo such as ``block_out_channel`` would silently train another model)."""
    accepted = set(inspect.signature(model_cls.__init__).parameters) - {'self'}
    unknown = sorted(k for k in config if k not in accepted and not k.startswith('_'))
    if unknown:
        raise ValueError(f'{model_cls.__name__} config: unknown keys {unknown}; it takes '
                         f'{sorted(accepted)}')


class DiffusersDenoiser(nn.Module):
    """Base class: a diffusers denoiser with a uniform call and hooked decoder features.

    Subclasses set ``model_cls`` and implement ``_run`` (one call of the diffusers model),
    ``num_classes`` and the feature bookkeeping (``_feature_modules``, ``feature_strides``,
    ``feature_channels``).

    Args:
        config: ``__init__`` arguments of the diffusers model (random initialisation).
        pretrained: a local directory written by ``save_pretrained``.
        subfolder: subfolder of ``pretrained`` (e.g. ``'unet'`` or ``'transformer'`` of a pipeline).
        learn_sigma: whether the model outputs ``2 * C`` channels, the second half being the
            learned-range variance values. Default: inferred from the model's in/out channels.
    """
    model_cls: ClassVar[type]

    def __init__(self,
                 config: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 subfolder: Optional[str] = None,
                 learn_sigma: Optional[bool] = None):
        super().__init__()
        self.model = build_diffusers_model(self.model_cls, config, pretrained, subfolder)
        in_ch = self.model.config.in_channels
        out_ch = self.model.config.out_channels or in_ch
        inferred = out_ch == 2 * in_ch
        if learn_sigma is not None and learn_sigma != inferred:
            raise ValueError(
                f'{type(self).__name__}: learn_sigma={learn_sigma} but the model maps {in_ch} '
                f'input channels to {out_ch} output channels (learned variance needs {2 * in_ch})')
        self.learn_sigma = inferred
        self.in_channels = in_ch
        self._captured: Dict[int, Tensor] = {}
        modules = self._feature_modules()
        for index, (module, pre) in enumerate(modules):
            # Bound methods (through partial): a deepcopy of the wrapper (the EMA copy) re-binds
            # its hooks to the copy, where a closure would still write into the original.
            if pre:
                module.register_forward_pre_hook(functools.partial(self._capture_input, index))
            else:
                module.register_forward_hook(functools.partial(self._capture_output, index))
        self._num_features = len(modules)

    # -- hooks -------------------------------------------------------------------------------
    def _capture_input(self, index: int, _module, args) -> None:
        self._captured[index] = args[0]

    def _capture_output(self, index: int, _module, _args, output) -> None:
        self._captured[index] = output[0] if isinstance(output, tuple) else output

    def _feature_modules(self) -> List[Tuple[nn.Module, bool]]:
        """(module, capture its input?) for each feature, in increasing-stride order."""
        raise NotImplementedError

    def _to_feature_maps(self, captured: List[Tensor], height: int, width: int) -> List[Tensor]:
        """Turns captured activations into [B, C, h, w] maps; identity for UNets."""
        return captured

    # -- conditioning ------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        raise NotImplementedError

    @property
    def null_class_id(self) -> int:
        """Index of the unconditional class (the classifier-free-guidance row)."""
        return self.num_classes

    def _class_labels(self, class_labels: Optional[Tensor], batch_size: int,
                      device: torch.device) -> Tensor:
        if class_labels is None:
            return torch.full((batch_size, ), self.null_class_id, dtype=torch.long, device=device)
        class_labels = torch.as_tensor(class_labels, device=device).long().reshape(-1)
        if class_labels.numel() == 1 and batch_size > 1:
            class_labels = class_labels.expand(batch_size)
        return class_labels

    @staticmethod
    def _timesteps(t, batch_size: int, device: torch.device) -> Tensor:
        t = torch.as_tensor(t, device=device)
        return t.expand(batch_size) if t.ndim == 0 else t

    def _run(self, x_t: Tensor, t: Tensor, class_labels: Tensor) -> Tensor:
        raise NotImplementedError

    # -- public calls ------------------------------------------------------------------------
    def forward(self, x_t: Tensor, t, class_labels: Optional[Tensor] = None) -> Tensor:
        """One denoiser call: [B, C, H, W] -> eps [B, C, H, W] (or [B, 2C, H, W] with the
        learned-range variance values when ``learn_sigma``). ``t``: int or [B] timesteps;
        ``class_labels``: [B] ints, or ``None`` for the null class."""
        batch = x_t.shape[0]
        return self._run(x_t, self._timesteps(t, batch, x_t.device),
                         self._class_labels(class_labels, batch, x_t.device))

    def split_output(self, output: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Model output -> (eps, learned-range variance values or None)."""
        if not self.learn_sigma:
            return output, None
        eps, var_values = output.split(self.in_channels, dim=1)
        return eps, var_values

    def forward_features(self, x_t: Tensor, t, class_labels: Optional[Tensor] = None
                         ) -> DenoiserOutput:
        """Like :meth:`forward`, also returning the decoder features."""
        self._captured.clear()
        try:
            output = self(x_t, t, class_labels)
            captured = [self._captured[i] for i in range(self._num_features)]
        finally:
            self._captured.clear()
        eps, var_values = self.split_output(output)
        features = self._to_feature_maps(captured, x_t.shape[-2], x_t.shape[-1])
        return DenoiserOutput(eps=eps, var_values=var_values, features=tuple(features))

    @property
    def feature_strides(self) -> Tuple[int, ...]:
        raise NotImplementedError

    @property
    def feature_channels(self) -> Tuple[int, ...]:
        raise NotImplementedError

    @property
    def size_divisor(self) -> int:
        """Input height and width must be multiples of this."""
        raise NotImplementedError


class _UNetFeatures:
    """Decoder features of a diffusers UNet: the input of each up block's upsampler (the block's
    activations before resolution doubles), and the last block's output. Up block ``i`` of ``n``
    works at stride ``2 ** (n - 1 - i)``, so reversing the up blocks gives increasing strides."""

    def _feature_modules(self):
        blocks = list(self.model.up_blocks)[::-1]
        return [(block.upsamplers[0], True) if block.upsamplers is not None else (block, False)
                for block in blocks]

    @property
    def feature_strides(self):
        return tuple(2**i for i in range(len(self.model.up_blocks)))

    @property
    def feature_channels(self):
        return tuple(self.model.config.block_out_channels)

    @property
    def size_divisor(self):
        return 2**(len(self.model.config.block_out_channels) - 1)


@MODELS.register_module()
class UNet2DDenoiser(_UNetFeatures, DiffusersDenoiser):
    """Pixel-space class-conditional ``diffusers.UNet2DModel``.

    Class conditioning uses the model's ``nn.Embedding`` class table (``num_class_embeds`` rows,
    ``class_embed_type=None``); its last row is the null class, so a model for ``K`` classes has
    ``num_class_embeds = K + 1``.

    Args:
        num_classes: for an unconditional checkpoint (no class table: the LDMs of CelebA-HQ and
            LSUN-Churches), the ``K`` classes of a table added to it, as UNet2DModel's own
            ``__init__`` builds it for ``num_class_embeds = K + 1`` (added to the time embedding),
            but zero-initialised, so the model starts as the unconditional one for every class
            and the null class. ``None``: the checkpoint's table.
        **kwargs: those of :class:`DiffusersDenoiser`.
    """
    model_cls = UNet2DModel

    def __init__(self, num_classes: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        cfg = self.model.config
        if num_classes is not None:
            if cfg.num_class_embeds is not None or cfg.class_embed_type is not None:
                raise ValueError(
                    f'UNet2DDenoiser: num_classes={num_classes} adds a class table to an '
                    f'unconditional UNet2DModel, but this one has one (num_class_embeds='
                    f'{cfg.num_class_embeds}, class_embed_type={cfg.class_embed_type!r})')
            time_embed_dim = self.model.time_embedding.linear_2.out_features
            self.model.class_embedding = nn.Embedding(num_classes + 1, time_embed_dim)
            nn.init.zeros_(self.model.class_embedding.weight)
            self.model.register_to_config(num_class_embeds=num_classes + 1)
            cfg = self.model.config
        if cfg.num_class_embeds is None or cfg.class_embed_type is not None:
            raise ValueError(
                'UNet2DDenoiser needs a class-conditional UNet2DModel: set num_class_embeds = '
                f'num_classes + 1 and class_embed_type=None (got num_class_embeds='
                f'{cfg.num_class_embeds}, class_embed_type={cfg.class_embed_type!r})')

    @property
    def num_classes(self):
        return self.model.config.num_class_embeds - 1

    def _run(self, x_t, t, class_labels):
        return self.model(x_t, t, class_labels=class_labels).sample


@MODELS.register_module()
class UNet2DConditionDenoiser(_UNetFeatures, DiffusersDenoiser):
    """Latent-space ``diffusers.UNet2DConditionModel`` conditioned by cross-attention.

    A class id becomes the cross-attention context through a learned table of ``num_tokens`` tokens
    per class (row ``num_classes`` is the null class), the role the text prompt plays in LDM. The
    table starts random, or from ``class_context``: for a text-conditioned checkpoint (Stable
    Diffusion), the text encoder's hidden states of a prompt naming each class and of the empty
    prompt for the null class (``genrep.models.encode_class_prompts``), so that p(x|y), which the
    teacher reads, is the checkpoint's own class-conditional model from the first step.

    Args:
        num_classes: classes the table covers (the null class is added).
        num_tokens: context tokens per class (ignored when ``class_context`` gives them).
        class_context: initial context [num_classes + 1, T, cross_attention_dim], the null class
            last.
    """
    model_cls = UNet2DConditionModel

    def __init__(self, num_classes: int, num_tokens: int = 1,
                 class_context: Optional[Tensor] = None, **kwargs):
        super().__init__(**kwargs)
        self._num_classes = num_classes
        dim = self.model.config.cross_attention_dim
        if class_context is not None:
            expected = (num_classes + 1, dim)
            if class_context.dim() != 3 or (class_context.shape[0],
                                            class_context.shape[2]) != expected:
                raise ValueError(
                    f'UNet2DConditionDenoiser: class_context must be [{num_classes + 1}, T, {dim}] '
                    f'(the classes, then the null class), got {tuple(class_context.shape)}')
            num_tokens = class_context.shape[1]
        self.class_context = nn.Embedding((num_classes + 1) * num_tokens, dim)
        if class_context is None:
            nn.init.normal_(self.class_context.weight, std=dim**-0.5)
        else:
            with torch.no_grad():
                self.class_context.weight.copy_(class_context.reshape(-1, dim))
        self.num_tokens = num_tokens

    @property
    def num_classes(self):
        return self._num_classes

    def class_embeddings(self, class_labels: Tensor) -> Tensor:
        """[B] class ids -> [B, num_tokens, cross_attention_dim] context."""
        token = torch.arange(self.num_tokens, device=class_labels.device)
        return self.class_context(class_labels[:, None] * self.num_tokens + token)

    def _run(self, x_t, t, class_labels):
        context = self.class_embeddings(class_labels).to(x_t.dtype)
        return self.model(x_t, t, encoder_hidden_states=context).sample


@MODELS.register_module()
class DiTDenoiser(DiffusersDenoiser):
    """``diffusers.DiTTransformer2DModel`` (Peebles & Xie, 2023).

    A transformer has one resolution, so the features are the token maps of four blocks (by
    default the last of each quarter of the depth), unpatchified to [B, D, H/p, W/p] and resampled
    without parameters by ``scale_factors`` (bilinear up, average-pool down), as in ViTDet's simple
    feature pyramid: with patch size p, feature i has stride ``p / scale_factors[i]``.

    The class table of DiT has a null row at index ``num_embeds_ada_norm`` only when the model was
    built with label dropout (``class_dropout_prob > 0`` inside diffusers, the default).

    Args:
        feature_layers: indices of the transformer blocks whose outputs are features.
        scale_factors: resampling factor of each feature map, >= 1 up, < 1 down.
    """
    model_cls = DiTTransformer2DModel

    def __init__(self,
                 feature_layers: Optional[Sequence[int]] = None,
                 scale_factors: Sequence[float] = (2.0, 1.0, 0.5, 0.25),
                 **kwargs):
        self._feature_layers = feature_layers
        super().__init__(**kwargs)
        if len(self.feature_layers) != len(scale_factors):
            raise ValueError(f'DiTDenoiser: {len(self.feature_layers)} feature_layers but '
                             f'{len(scale_factors)} scale_factors')
        patch = self.model.config.patch_size
        for s in scale_factors:
            whole = s == int(s) if s >= 1 else 1 / s == int(1 / s)
            if not whole or (patch / s) != int(patch / s):
                raise ValueError(
                    f'DiTDenoiser: scale factor {s} must be a whole number or the inverse of one '
                    f'that gives a whole stride patch_size / s (patch_size={patch})')
        self.scale_factors = tuple(scale_factors)

    @property
    def feature_layers(self) -> Tuple[int, ...]:
        depth = self.model.config.num_layers
        if self._feature_layers is None:
            return tuple(depth * q // 4 - 1 for q in range(1, 5)) if depth >= 4 else tuple(
                range(depth))
        bad = [i for i in self._feature_layers if not 0 <= i < depth]
        if bad:
            raise ValueError(f'DiTDenoiser: feature_layers {bad} out of range for {depth} blocks')
        return tuple(self._feature_layers)

    def _feature_modules(self):
        return [(self.model.transformer_blocks[i], False) for i in self.feature_layers]

    def _to_feature_maps(self, captured, height, width):
        p = self.model.config.patch_size
        h, w = height // p, width // p
        maps = []
        for tokens, s in zip(captured, self.scale_factors):
            fmap = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
            if s > 1:
                fmap = F.interpolate(fmap, scale_factor=s, mode='bilinear', align_corners=False)
            elif s < 1:
                fmap = F.avg_pool2d(fmap, kernel_size=int(round(1 / s)))
            maps.append(fmap)
        return maps

    @property
    def num_classes(self):
        return self.model.config.num_embeds_ada_norm

    @property
    def feature_strides(self):
        p = self.model.config.patch_size
        return tuple(int(p / s) for s in self.scale_factors)

    @property
    def feature_channels(self):
        return (self.model.inner_dim, ) * len(self.scale_factors)

    @property
    def size_divisor(self):
        smallest = min(self.scale_factors)
        return int(self.model.config.patch_size * (round(1 / smallest) if smallest < 1 else 1))

    def _run(self, x_t, t, class_labels):
        return self.model(x_t, timestep=t, class_labels=class_labels).sample

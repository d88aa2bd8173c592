"""Explicit wrappers of the diffusers denoisers GenRep builds on.

Each wrapper owns one diffusers model (``self.model``), used exactly as diffusers ships it, and adds:

* one calling convention for every kind, ``forward(x_t, t, class_labels) -> model output``, where the
  output is the predicted noise eps, with the learned-range variance values concatenated on channels
  when the model learns its variance (improved DDPM / DiT). The reverse chain and the posterior
  estimators only rely on this convention, so an analytic denoiser can stand in for a network in tests.
* ``forward_features(...)``, which returns a :class:`DenoiserOutput` with eps, the variance values and
  the decoder features, captured by forward hooks (never by replacing a diffusers ``forward``);
  ``forward_feature(..., index)`` returns one of those features and ends the pass where it is
  captured (the hook raises :class:`_FeatureReached`), so the layers after it do not run.
* a *null class*: ``class_labels=None`` means unconditional, encoded as the extra class index
  ``num_classes`` (the classifier-free-guidance row of DiT's label table). Perception passes use it.

Features are returned ordered by increasing stride (the OpenMMLab backbone convention), with their
strides and channels known statically (``feature_strides``, ``feature_channels``), so FPN necks can be
configured without a dry run.
"""
import functools
import inspect
import json
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


class _FeatureReached(Exception):
    """Raised by a capture hook to end a pass of ``forward_feature`` once its feature is held: what
    diffusers would compute after it is not needed, and an exception is the one way a hook can stop
    a third-party ``forward`` without replacing it."""


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
    check_pretrained_weights(model_cls, where)
    return model_cls.from_pretrained(path, subfolder=subfolder, local_files_only=True)


DEPRECATED_ATTENTION_NAMES = (('.query.', '.to_q.'), ('.key.', '.to_k.'), ('.value.', '.to_v.'),
                              ('.proj_attn.', '.to_out.0.'))


def saved_weight_shapes(folder: str) -> Dict[str, Tuple[Tuple[int, ...], str]]:
    """{key: (shape, file)} of the weights ``save_pretrained`` wrote to ``folder`` (safetensors,
    sharded or not, read from the headers only; or a ``.bin`` state dict)."""
    from safetensors import safe_open
    files = sorted(f for f in os.listdir(folder) if f.endswith('.safetensors'))
    shapes = {}
    for name in files:
        with safe_open(osp.join(folder, name), framework='pt') as f:
            for key in f.keys():
                shapes[key] = (tuple(f.get_slice(key).get_shape()), name)
    if not files:
        for name in sorted(f for f in os.listdir(folder) if f.endswith('.bin')):
            state = torch.load(osp.join(folder, name), map_location='cpu', weights_only=True,
                               mmap=True)
            shapes.update({k: (tuple(v.shape), name) for k, v in state.items()})
    return shapes


def check_pretrained_weights(model_cls, folder: str) -> None:
    """Refuse a diffusers folder whose weights do not fill the model its ``config.json`` builds.

    ``from_pretrained`` initialises a missing weight at random with a warning, and a file
    converted for another architecture may fail deep inside diffusers; here the first missing,
    unexpected or mis-shaped key is named with its file. The model is built on the meta device
    (no memory), the file read from its headers.

    Raises:
        ValueError: the folder's weights and its config disagree.
    """
    config_file = osp.join(folder, 'config.json')
    saved = saved_weight_shapes(folder)
    if not osp.isfile(config_file) or not saved:
        raise FileNotFoundError(f'pretrained: {folder} has no config.json and weights file '
                                '(diffusers save_pretrained layout)')
    config = model_cls.load_config(folder)
    try:
        with torch.device('meta'):
            model = model_cls.from_config(config)
    except (NotImplementedError, RuntimeError):  # a model whose __init__ needs real tensors
        model = model_cls.from_config(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    # diffusers converts the attention names of folders saved before 0.15 while loading.
    deprecated = set()
    for key in list(saved):
        renamed = key
        for old, new in DEPRECATED_ATTENTION_NAMES:
            renamed = renamed.replace(old, new)
        if renamed != key:
            saved.setdefault(renamed, saved[key])
            deprecated.add(key)
    for key, shape in expected.items():
        if key not in saved:
            raise ValueError(f'pretrained: {folder}: weight {key} {list(shape)} of the '
                             f'{model_cls.__name__} its config.json describes is not in the '
                             'weights files')
        if saved[key][0] != shape:
            raise ValueError(f'pretrained: {folder}/{saved[key][1]}: {key} has shape '
                             f'{list(saved[key][0])}, config.json makes it {list(shape)}')
    unexpected = sorted(set(saved) - set(expected) - deprecated)
    if unexpected:
        raise ValueError(f'pretrained: {folder}/{saved[unexpected[0]][1]}: {unexpected[0]} is no '
                         f'weight of the {model_cls.__name__} its config.json describes '
                         f'({len(unexpected)} such keys)')


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
        self._stop_at: Optional[int] = None  # the feature that ends a forward_feature pass
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
        if index == self._stop_at:
            raise _FeatureReached

    def _capture_output(self, index: int, _module, _args, output) -> None:
        self._captured[index] = output[0] if isinstance(output, tuple) else output
        if index == self._stop_at:
            raise _FeatureReached

    def _feature_modules(self) -> List[Tuple[nn.Module, bool]]:
        """(module, capture its input?) for each feature, in increasing-stride order."""
        raise NotImplementedError

    def _to_feature_map(self, index: int, captured: Tensor, height: int, width: int) -> Tensor:
        """Turns the captured activation of feature ``index`` into a [B, C, h, w] map; identity for
        UNets."""
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
        features = tuple(self._to_feature_map(i, fmap, x_t.shape[-2], x_t.shape[-1])
                         for i, fmap in enumerate(captured))
        return DenoiserOutput(eps=eps, var_values=var_values, features=features)

    def forward_feature(self, x_t: Tensor, t, class_labels: Optional[Tensor] = None,
                        index: int = -1) -> Tensor:
        """Decoder feature ``index`` (``-1``: the deepest) of one pass, equal to
        ``forward_features(x_t, t, class_labels).features[index]``; the pass ends where the feature
        is captured (a UNet's deepest decoder feature comes before its upper decoder blocks).
        Shape: [B, C_i, H / s_i, W / s_i]."""
        index = range(self._num_features)[index]
        self._captured.clear()
        self._stop_at = index
        try:
            self(x_t, t, class_labels)
        except _FeatureReached:
            pass
        finally:
            self._stop_at = None
        try:
            captured = self._captured[index]
        finally:
            self._captured.clear()
        return self._to_feature_map(index, captured, x_t.shape[-2], x_t.shape[-1])

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


def set_attention_heads(model: nn.Module, heads: int) -> None:
    """Give every attention layer of ``model`` ``heads`` heads of width ``inner_dim / heads``."""
    from diffusers.models.attention_processor import Attention
    layers = [m for m in model.modules() if isinstance(m, Attention)]
    if not layers:
        raise ValueError(f'num_attention_heads={heads}: the model has no attention layer')
    for layer in layers:
        if layer.inner_dim % heads:
            raise ValueError(f'num_attention_heads={heads} does not divide an attention width '
                             f'of {layer.inner_dim}')
        layer.heads = heads
        layer.scale = (layer.inner_dim // heads)**-0.5


def check_converted_heads(pretrained: Optional[str], num_attention_heads: Optional[int]) -> None:
    """A folder converted from latent-diffusion records the heads its attention needs
    (``ldm_conversion.json``); refuse a config that gives others."""
    record = osp.join(os.fspath(pretrained), 'ldm_conversion.json') if pretrained else None
    if record is None or not osp.isfile(record):
        return
    with open(record) as f:
        needed = json.load(f).get('num_attention_heads')
    if needed is not None and needed != num_attention_heads:
        raise ValueError(f'UNet2DDenoiser: num_attention_heads={num_attention_heads}, but {record} '
                         f'says the converted UNet needs num_attention_heads={needed} (the '
                         "checkpoint's num_heads at every width)")


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
        num_attention_heads: heads of every attention layer, whatever its width: openaimodel's
            ``num_heads`` (LSUN-Churches' LDM: 8 heads at widths 192 .. 768), which UNet2DModel's
            config cannot state (its ``attention_head_dim`` fixes the head width);
            tools/model_converters/ldm_to_diffusers.py prints the value. ``None``: the config's.
        **kwargs: those of :class:`DiffusersDenoiser`.
    """
    model_cls = UNet2DModel

    def __init__(self, num_classes: Optional[int] = None,
                 num_attention_heads: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        check_converted_heads(kwargs.get('pretrained'), num_attention_heads)
        if num_attention_heads is not None:
            set_attention_heads(self.model, num_attention_heads)
        self.num_attention_heads = num_attention_heads
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


def read_class_embedding(path: str, num_classes: int, dim: int) -> Tensor:
    """LDM's ClassEmbedder table in ``path`` as a class context [num_classes + 1, 1, dim]."""
    from safetensors.torch import load_file
    if not osp.isfile(path):
        raise FileNotFoundError(f'class_embedding: {path} not found (ldm_to_diffusers.py writes '
                                'class_embedding.safetensors for a class-conditional LDM)')
    tensors = load_file(path)
    if 'embedding.weight' not in tensors:
        raise KeyError(f'class_embedding: {path} has no embedding.weight (keys: '
                       f'{sorted(tensors)})')
    table = tensors['embedding.weight'].float()
    if table.dim() != 2 or table.shape[0] not in (num_classes, num_classes + 1) \
            or table.shape[1] != dim:
        raise ValueError(f'class_embedding: {path}: embedding.weight is {list(table.shape)}, '
                         f'expected [{num_classes} or {num_classes + 1}, {dim}] (num_classes, '
                         "the UNet's cross_attention_dim)")
    if table.shape[0] == num_classes:
        table = torch.cat([table, table.mean(0, keepdim=True)])
    return table[:, None]


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
        class_embedding: a safetensors file of a latent-diffusion ClassEmbedder table
            (``embedding.weight``, [num_classes or num_classes + 1, cross_attention_dim]; the
            ``class_embedding.safetensors`` that tools/model_converters/ldm_to_diffusers.py
            writes): the checkpoint's trained class context, one token a class, as LDM's
            ``ClassEmbedder`` gives it. A table without a null row (cin-ldm-vq-f8: 1000 rows, no
            label dropout) gets one at the mean of the class rows, which label dropout then
            trains; the extra row of a table with one is its null (unconditional) class.
    """
    model_cls = UNet2DConditionModel

    def __init__(self, num_classes: int, num_tokens: int = 1,
                 class_context: Optional[Tensor] = None,
                 class_embedding: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self._num_classes = num_classes
        dim = self.model.config.cross_attention_dim
        if class_embedding is not None:
            if class_context is not None:
                raise ValueError('UNet2DConditionDenoiser: give class_context or class_embedding, '
                                 'not both')
            class_context = read_class_embedding(class_embedding, num_classes, dim)
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

    Timestep frequencies: DiT's ``TimestepEmbedder`` uses ``exp(-ln(10^4) i / 128)``, i < 128;
    diffusers' ``CombinedTimestepLabelEmbeddings`` divides by 127 (``downscale_freq_shift=1``), so
    a released DiT checkpoint in diffusers sees slightly other time features than it was trained
    on. ``dit_timesteps=True`` restores DiT's (tests/test_model_converters.py checks the wrapped
    model against DiT's forward).

    Args:
        feature_layers: indices of the transformer blocks whose outputs are features.
        scale_factors: resampling factor of each feature map, >= 1 up, < 1 down.
        dit_timesteps: embed timesteps with DiT's frequencies (see above); ``False``: diffusers'.
    """
    model_cls = DiTTransformer2DModel

    def __init__(self,
                 feature_layers: Optional[Sequence[int]] = None,
                 scale_factors: Sequence[float] = (2.0, 1.0, 0.5, 0.25),
                 dit_timesteps: bool = True,
                 **kwargs):
        self._feature_layers = feature_layers
        super().__init__(**kwargs)
        if dit_timesteps:
            for block in self.model.transformer_blocks:
                block.norm1.emb.time_proj.downscale_freq_shift = 0
        self.dit_timesteps = dit_timesteps
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

    def _to_feature_map(self, index, captured, height, width):
        p = self.model.config.patch_size
        fmap = captured.transpose(1, 2).reshape(captured.shape[0], -1, height // p, width // p)
        s = self.scale_factors[index]
        if s > 1:
            fmap = F.interpolate(fmap, scale_factor=s, mode='bilinear', align_corners=False)
        elif s < 1:
            fmap = F.avg_pool2d(fmap, kernel_size=int(round(1 / s)))
        return fmap

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

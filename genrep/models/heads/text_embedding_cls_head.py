"""Open-vocabulary classification by similarity to class-name text embeddings (appendix A.4).

"To enable generalization to out-of-the-distribution classes, the model computes the similarity
between pooled features and text embeddings of class labels"; the segmentation decoder compares
class queries, the detector region features, with label embeddings the same way. One module does it
for all three:

    logits = s * cos(W f, e_k),    s = exp(log_s) clamped to s_max (CLIP's learned logit scale)

for features f [..., C], a linear projection W: C -> D, the fixed unit class-name embeddings e_k
[N, D] and, for dense/region heads, a learned background embedding (ViLD, BARON) as class N.

Generalised zero-shot evaluation (seen and unseen names together) favours the names trained on; the
optional calibrated stacking of Chao et al. (2016, "An empirical study and analysis of generalized
zero-shot learning"), ``seen_logit_penalty`` gamma, subtracts gamma from the logits of the training
vocabulary at evaluation: logits_k - gamma * [k was trained on].

The class embeddings are a non-persistent buffer: they belong to the evaluation's vocabulary, not to
the trained weights, so a checkpoint trained on one set of names loads into a head built for another
(the ObjectNet protocol: train on ImageNet names, test on ObjectNet's) and ``set_class_names`` /
``set_text_embeddings`` swap them in place.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from genrep.registry import MODELS
from ..text_encoders import BaseTextEncoder, load_text_embeddings, resolve_class_embeddings


@MODELS.register_module()
class TextEmbeddingClassifier(nn.Module):
    """Features [..., C] -> logits [..., N] (or [..., N + 1] with the background last, mmdet's
    convention) by scaled cosine similarity to class-name embeddings.

    The class embeddings come from ``text_encoder`` (a config dict or a ``BaseTextEncoder``) with
    ``class_names``, or from ``text_embeddings`` (an [N, D] tensor or a .pt/.pth/.npy file of one).

    Args:
        in_channels: C, channels of the features (class queries, region or pooled features).
        text_encoder: text encoder config or instance; kept (outside the state dict) for
            ``set_class_names``.
        class_names: the N class names to encode.
        text_embeddings: the class embeddings themselves, instead of an encoder.
        with_background: append a learned background embedding as class N (ViLD, BARON).
        logit_scale_init: initial s (CLIP: 1 / 0.07).
        logit_scale_max: s is clamped to at most this (CLIP: 100).
        learn_logit_scale: learn log s; if False, s stays ``logit_scale_init``.
        seen_logit_penalty: gamma of calibrated stacking: subtracted, in eval mode, from the logits
            of the names the classifier was built with (its training vocabulary ``class_names``)
            wherever they are in the current vocabulary; 0 (the default) leaves logits as they are.
    """

    def __init__(self,
                 in_channels: int,
                 text_encoder: Union[None, dict, BaseTextEncoder] = None,
                 class_names: Optional[Sequence[str]] = None,
                 text_embeddings: Union[None, str, Tensor] = None,
                 with_background: bool = True,
                 logit_scale_init: float = 1 / 0.07,
                 logit_scale_max: float = 100.0,
                 learn_logit_scale: bool = True,
                 seen_logit_penalty: float = 0.0):
        super().__init__()
        owner = type(self).__name__
        if seen_logit_penalty and not class_names:
            raise ValueError(f'{owner}: seen_logit_penalty needs class_names (the training '
                             f'vocabulary it penalises)')
        embeddings, self.text_encoder = resolve_class_embeddings(owner, text_encoder, class_names,
                                                                 text_embeddings)
        self.class_names = None if class_names is None else list(class_names)
        self.trained_class_names = self.class_names
        self.seen_logit_penalty = seen_logit_penalty
        self.in_channels = in_channels
        self.embed_dims = embeddings.shape[1]
        self.with_background = with_background
        self.logit_scale_max = logit_scale_max
        self.register_buffer('text_embeddings', embeddings, persistent=False)
        self.projection = nn.Linear(in_channels, self.embed_dims)
        log_scale = torch.tensor(math.log(logit_scale_init))
        if learn_logit_scale:
            self.log_logit_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer('log_logit_scale', log_scale)
        if with_background:
            # A random direction; only its direction matters (it is normalised like the classes).
            self.background_embedding = nn.Parameter(torch.randn(self.embed_dims) /
                                                     math.sqrt(self.embed_dims))

    @property
    def num_classes(self) -> int:
        """N, the classes named by the text (the background, if any, is not counted)."""
        return self.text_embeddings.shape[0]

    @property
    def logit_scale(self) -> Tensor:
        return self.log_logit_scale.exp().clamp(max=self.logit_scale_max)

    def class_embeddings(self) -> Tensor:
        """The unit embeddings compared with: [N, D], or [N + 1, D] with the background last."""
        if not self.with_background:
            return self.text_embeddings
        background = F.normalize(self.background_embedding, dim=0)
        return torch.cat([self.text_embeddings, background.unsqueeze(0).to(self.text_embeddings)])

    def forward(self, features: Tensor) -> Tensor:
        """Features [..., C] -> logits [..., N] (+1 with background): s * cos(W f, e_k)."""
        if features.shape[-1] != self.in_channels:
            raise ValueError(f'TextEmbeddingClassifier: features must be '
                             f'[..., {self.in_channels}], got {tuple(features.shape)}')
        projected = F.normalize(self.projection(features), dim=-1)
        classes = self.class_embeddings().to(projected.dtype)
        logits = self.logit_scale.to(projected.dtype) * projected @ classes.t()
        if self.seen_logit_penalty and not self.training:
            logits = logits - self.seen_logit_penalty * self.seen_columns().to(logits)
        return logits

    def seen_columns(self) -> Tensor:
        """1 for each logit column whose name is in the training vocabulary, else 0 (the
        background column, if any, is 0): [N] or [N + 1]."""
        names = self.class_names or []
        seen = [float(name in self.trained_class_names) for name in names]
        if len(seen) != self.num_classes:
            raise ValueError('TextEmbeddingClassifier: seen_logit_penalty needs the names of the '
                             'current vocabulary (set_class_names, or class_names with '
                             'set_text_embeddings)')
        return torch.tensor(seen + [0.0] * self.with_background)

    def set_text_embeddings(self, text_embeddings: Union[str, Tensor],
                            class_names: Optional[Sequence[str]] = None) -> None:
        """Replaces the class embeddings ([N', D] tensor or file; D unchanged) for a new vocabulary;
        the projection, the logit scale and the background embedding are kept."""
        embeddings = load_text_embeddings(type(self).__name__, text_embeddings)
        if embeddings.shape[1] != self.embed_dims:
            raise ValueError(f'TextEmbeddingClassifier: new text embeddings have D = '
                             f'{embeddings.shape[1]}, the projection maps to {self.embed_dims}')
        if class_names is not None and len(class_names) != embeddings.shape[0]:
            raise ValueError(f'TextEmbeddingClassifier: {len(class_names)} class_names for '
                             f'{embeddings.shape[0]} embeddings')
        self.text_embeddings = F.normalize(embeddings.float(), dim=-1).to(
            self.projection.weight.device)
        self.class_names = None if class_names is None else list(class_names)

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Encodes ``class_names`` with the text encoder (cached) and uses them as the classes."""
        if self.text_encoder is None:
            raise ValueError('TextEmbeddingClassifier.set_class_names: built from text_embeddings, '
                             'with no text_encoder; use set_text_embeddings')
        self.set_text_embeddings(self.text_encoder.encode(class_names), class_names)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, embed_dims={self.embed_dims}, '
                f'num_classes={self.num_classes}, with_background={self.with_background}, '
                f'seen_logit_penalty={self.seen_logit_penalty}, '
                f'text_encoder={self.text_encoder!r}')


@MODELS.register_module()
class TextEmbeddingClsHead(ClsHead):
    """mmpretrain classification head over class-name text embeddings: pooled features [B, C] ->
    linear projection to D -> logits [B, N] = s * cosine similarity to the N class embeddings
    (``TextEmbeddingClassifier`` without background). Loss, accuracy and predictions are
    ``ClsHead``'s, so it drops into an ``ImageClassifier`` in place of ``LinearClsHead``.

    For zero-shot / out-of-distribution tests, build the test config's head with the test
    vocabulary (the class embeddings are not in the checkpoint), or call ``set_class_names``.

    Args:
        in_channels: C, channels of the pooled features (the neck's output).
        text_encoder, class_names, text_embeddings, logit_scale_init, logit_scale_max,
            learn_logit_scale: as ``TextEmbeddingClassifier``; ``class_names`` may also name a
            registered dataset class (its ``METAINFO['classes']``).
        loss, topk, cal_acc, init_cfg: as ``ClsHead``.
    """

    def __init__(self,
                 in_channels: int,
                 text_encoder: Union[None, dict, BaseTextEncoder] = None,
                 class_names: Optional[Sequence[str]] = None,
                 text_embeddings: Union[None, str, Tensor] = None,
                 logit_scale_init: float = 1 / 0.07,
                 logit_scale_max: float = 100.0,
                 learn_logit_scale: bool = True,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 topk: Union[int, Tuple[int]] = (1, ),
                 cal_acc: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(loss=loss, topk=topk, cal_acc=cal_acc, init_cfg=init_cfg)
        self.in_channels = in_channels
        if class_names is not None:
            # A registered dataset's name (e.g. 'mmpretrain.ImageNet') stands for its classes;
            # imported here: the segmentation head's module imports this one.
            from .vocabulary import dataset_class_names
            class_names = dataset_class_names(class_names)
        self.classifier = TextEmbeddingClassifier(
            in_channels, text_encoder=text_encoder, class_names=class_names,
            text_embeddings=text_embeddings, with_background=False,
            logit_scale_init=logit_scale_init, logit_scale_max=logit_scale_max,
            learn_logit_scale=learn_logit_scale)

    @property
    def num_classes(self) -> int:
        return self.classifier.num_classes

    @property
    def class_names(self) -> Optional[List[str]]:
        return self.classifier.class_names

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        """The last stage's pooled features [B, C] -> logits [B, N]."""
        pre_logits = self.pre_logits(feats)
        if pre_logits.dim() != 2:
            raise ValueError(f'TextEmbeddingClsHead: expects pooled features '
                             f'[B, {self.in_channels}] (add a GlobalAveragePooling neck), got '
                             f'{tuple(pre_logits.shape)}')
        return self.classifier(pre_logits)

    def set_class_names(self, class_names: Sequence[str]) -> None:
        self.classifier.set_class_names(class_names)

    def set_text_embeddings(self, text_embeddings: Union[str, Tensor],
                            class_names: Optional[Sequence[str]] = None) -> None:
        self.classifier.set_text_embeddings(text_embeddings, class_names)

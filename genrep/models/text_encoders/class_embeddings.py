"""Where a head's class embeddings come from: a text encoder with class names, or embeddings."""
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from genrep.registry import MODELS
from .base import BaseTextEncoder

EncoderSource = Union[None, dict, BaseTextEncoder]
EmbeddingSource = Union[None, str, Tensor]


def build_text_encoder(owner: str, text_encoder: EncoderSource) -> Optional[BaseTextEncoder]:
    """A text encoder from its config (genrep's MODELS) or as given; None stays None."""
    if text_encoder is None or isinstance(text_encoder, BaseTextEncoder):
        return text_encoder
    if not isinstance(text_encoder, dict):
        raise TypeError(f'{owner}: text_encoder must be a config dict or a BaseTextEncoder, got '
                        f'{type(text_encoder).__name__}')
    encoder = MODELS.build(text_encoder)
    if not isinstance(encoder, BaseTextEncoder):
        raise TypeError(f'{owner}: text_encoder={text_encoder!r} built a '
                        f'{type(encoder).__name__}, not a BaseTextEncoder')
    return encoder


def load_text_embeddings(owner: str, text_embeddings: Union[str, Tensor]) -> Tensor:
    """[N, D] embeddings from a tensor or a file: .npy, or .pt/.pth holding a tensor or a dict
    with 'embeddings' (as a text encoder's cache file does)."""
    if isinstance(text_embeddings, str):
        path = osp.expanduser(text_embeddings)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{owner}: text_embeddings={text_embeddings!r} is not a file')
        if path.endswith('.npy'):
            loaded = torch.from_numpy(np.load(path))
        else:
            loaded = torch.load(path, map_location='cpu', weights_only=True)
            if isinstance(loaded, dict):
                loaded = loaded.get('embeddings')
        if not isinstance(loaded, Tensor):
            raise ValueError(f'{owner}: text_embeddings={text_embeddings!r} holds no tensor '
                             f'(expected .npy, or .pt/.pth with a tensor or a dict with '
                             f'"embeddings")')
        text_embeddings = loaded
    if not isinstance(text_embeddings, Tensor) or text_embeddings.dim() != 2:
        raise ValueError(f'{owner}: text_embeddings must be an [N, D] tensor or a file of one, got '
                         f'{getattr(text_embeddings, "shape", type(text_embeddings).__name__)}')
    return text_embeddings


def resolve_class_embeddings(
        owner: str, text_encoder: EncoderSource, class_names: Optional[Sequence[str]],
        text_embeddings: EmbeddingSource) -> Tuple[Tensor, Optional[BaseTextEncoder]]:
    """The L2-normalised class embeddings [N, D] of a head, and its text encoder (kept to swap
    class names later; None when the embeddings were given).

    Exactly one source: ``text_encoder`` (a config or an encoder) with ``class_names``, or
    ``text_embeddings`` (a tensor or a file; ``class_names``, if given, must be as many).
    """
    if (text_encoder is None) == (text_embeddings is None):
        raise ValueError(f'{owner}: give exactly one of text_encoder (with class_names) and '
                         f'text_embeddings')
    encoder = build_text_encoder(owner, text_encoder)
    if encoder is not None:
        if not class_names:
            raise ValueError(f'{owner}: text_encoder needs class_names')
        embeddings = encoder.encode(class_names)
    else:
        embeddings = load_text_embeddings(owner, text_embeddings)
        if class_names is not None and len(class_names) != embeddings.shape[0]:
            raise ValueError(f'{owner}: {len(class_names)} class_names but text_embeddings has '
                             f'{embeddings.shape[0]} rows')
    return F.normalize(embeddings.float(), dim=-1), encoder

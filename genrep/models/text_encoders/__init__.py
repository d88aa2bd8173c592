from .base import (CLIP_ENSEMBLE_TEMPLATES, DEFAULT_TEMPLATES, BaseTextEncoder, folder_fingerprint,
                   resolve_templates)
from .class_embeddings import build_text_encoder, load_text_embeddings, resolve_class_embeddings
from .clip import CLIPTextEncoder, encode_class_prompts
from .minilm import MiniLMTextEncoder, mean_pool

__all__ = [
    'BaseTextEncoder', 'MiniLMTextEncoder', 'CLIPTextEncoder', 'DEFAULT_TEMPLATES',
    'CLIP_ENSEMBLE_TEMPLATES', 'resolve_templates', 'folder_fingerprint', 'mean_pool',
    'build_text_encoder', 'load_text_embeddings', 'resolve_class_embeddings',
    'encode_class_prompts'
]

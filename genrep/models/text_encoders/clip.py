"""CLIP's text tower (with its projection) as a class-name encoder, loaded from local files only."""
import os.path as osp
from typing import List, Sequence

import torch
from torch import Tensor

from genrep.registry import MODELS
from .base import BaseTextEncoder, check_model_dir

WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
TOKENIZER_FILES = ('tokenizer.json', 'vocab.json')


@MODELS.register_module()
class CLIPTextEncoder(BaseTextEncoder):
    """CLIP text embeddings (``text_embeds`` of transformers' ``CLIPTextModelWithProjection``: the
    end-of-text token's feature, projected to the joint space), L2-normalised.

    Args:
        model_dir: a folder saved by transformers' ``save_pretrained`` of a CLIP model (e.g. a copy
            of openai/clip-vit-base-patch32; its vision weights are not used) or of a
            ``CLIPTextModelWithProjection``, with the CLIP tokenizer's files. Read with
            ``local_files_only``: nothing is downloaded.
        **kwargs: templates, cache_dir, batch_size, device of ``BaseTextEncoder``.
    """

    def __init__(self, model_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.model_dir = check_model_dir(type(self).__name__, 'model_dir', model_dir,
                                         [('config.json', ), WEIGHT_FILES, TOKENIZER_FILES])

    def _load(self) -> None:
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer
        self.tokenizer = CLIPTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = CLIPTextModelWithProjection.from_pretrained(
            self.model_dir, local_files_only=True)
        self.model.to(self.device).eval()
        # CLIP's context (77 tokens); a tokenizer saved without model_max_length reports ~1e30.
        self.max_length = min(self.tokenizer.model_max_length,
                              self.model.config.max_position_embeddings)

    def _embed_prompts(self, prompts: List[str]) -> Tensor:
        tokens = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors='pt').to(self.device)
        with torch.no_grad():
            return self.model(**tokens).text_embeds


def encode_class_prompts(pretrained: str,
                         class_names: Sequence[str],
                         template: str = 'a photograph of a {}.',
                         text_encoder_subfolder: str = 'text_encoder',
                         tokenizer_subfolder: str = 'tokenizer') -> Tensor:
    """The cross-attention context a text-conditioned diffusion checkpoint (Stable Diffusion) reads
    for each class: the CLIP text encoder's last hidden states of ``template`` naming the class,
    and of the empty prompt (the unconditional context) for the null class, each padded to the
    tokenizer's length as ``StableDiffusionPipeline`` encodes prompts.

    Args:
        pretrained: the checkpoint folder holding ``text_encoder/`` (transformers
            ``CLIPTextModel``) and ``tokenizer/`` (its ``CLIPTokenizer``); read with
            ``local_files_only``.

    Returns:
        [N + 1, T, D] float32 on the CPU, the null class last.
    """
    from transformers import CLIPTextModel, CLIPTokenizer
    owner = 'encode_class_prompts'
    encoder_dir = check_model_dir(owner, f'pretrained/{text_encoder_subfolder}',
                                  osp.join(str(pretrained), text_encoder_subfolder),
                                  [('config.json', ), WEIGHT_FILES])
    tokenizer_dir = check_model_dir(owner, f'pretrained/{tokenizer_subfolder}',
                                    osp.join(str(pretrained), tokenizer_subfolder),
                                    [TOKENIZER_FILES])
    if '{}' not in template:
        raise ValueError(f"{owner}: template={template!r} has no '{{}}' for the class name")
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    model = CLIPTextModel.from_pretrained(encoder_dir, local_files_only=True).eval()
    length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    prompts = [template.format(name) for name in class_names] + ['']
    tokens = tokenizer(prompts, padding='max_length', truncation=True, max_length=length,
                       return_tensors='pt')
    with torch.no_grad():
        return model(tokens.input_ids).last_hidden_state.float()

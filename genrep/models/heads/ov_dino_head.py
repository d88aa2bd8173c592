"""Open-vocabulary DINO: decoder queries scored against class-name text embeddings (paper A.4, the
DETR-style object decoder after Zhang et al. 2024: 6 layers, 8 heads, width 256).

mmdet's ``DINOHead`` (a ``DeformableDETRHead``) has one classification branch per decoder layer
plus one for the encoder's two-stage proposals, each a linear layer to a fixed list of N classes,
scored by sigmoid focal loss (no background column). Here each branch is a
``QueryTextClassifier``: the query is projected to the text-embedding space and scored by the
scaled cosine to the N class-name embeddings plus a learned bias (the focal-loss prior), so the
logits keep mmdet's [..., N] layout and DINO's Hungarian matching, denoising queries, losses and
inference run unchanged, while the N classes are text: trained on base names, the detector scores
novel classes by their names at test (``set_class_names``, which ``OpenVocabularyHook`` calls with
each phase's dataset classes). The encoder's branch scores the two-stage proposals over the same
vocabulary, so at test DINO selects its queries by novel names too.

The denoising queries of DINO embed their (noised) ground-truth labels with mmdet's
``CdnQueryGenerator`` table, built for the training vocabulary; they exist in training only, where
the vocabulary is the training one.
"""
from typing import Optional, Sequence, Union

import torch
from mmdet.models.dense_heads import DINOHead
from torch import Tensor, nn

from genrep.registry import MODELS
from ..text_encoders import build_text_encoder
from .text_embedding_cls_head import TextEmbeddingClassifier
from .vocabulary import training_vocabulary


@MODELS.register_module()
class QueryTextClassifier(TextEmbeddingClassifier):
    """``TextEmbeddingClassifier`` for a sigmoid (focal-loss) query head: no background column
    and one learned bias b for every class, logits [..., N] = s * cos(W q, e_k) + b.

    The bias is the linear layer's prior: named ``bias`` so that ``DeformableDETRHead.init_weights``
    sets it to the focal-loss prior (p = 0.01) as it does for the layer it replaces; without it
    every query starts at sigmoid(cos * s) ~ 0.5 for every class. ``out_features`` is the current
    N, as ``DINO.pre_decoder`` reads it from the encoder's branch.

    Args:
        in_channels: C, the query width.
        kwargs: ``TextEmbeddingClassifier`` arguments but ``with_background``.
    """

    def __init__(self, in_channels: int, **kwargs):
        if kwargs.pop('with_background', False):
            raise ValueError('QueryTextClassifier: a sigmoid query head has no background column '
                             '(with_background must be False)')
        super().__init__(in_channels, with_background=False, **kwargs)
        self.bias = nn.Parameter(torch.zeros(()))

    @property
    def out_features(self) -> int:
        return self.num_classes

    def forward(self, features: Tensor) -> Tensor:
        return super().forward(features) + self.bias


@MODELS.register_module()
class OpenVocabDINOHead(DINOHead):
    """mmdet's DINO head whose classification branches score queries against class-name text
    embeddings.

    Args:
        class_names: the training vocabulary: N names, the registered name of a dataset class or
            a dataset config (``dataset_class_names``); ``num_classes`` follows from it.
        text_encoder: config of the text encoder (``CLIPTextEncoder``, ``MiniLMTextEncoder``);
            the head encodes each vocabulary once for all its branches.
        classifier: further ``QueryTextClassifier`` arguments (logit scale).
        kwargs: mmdet ``DINOHead`` arguments (``num_classes`` may be None or the same count;
            ``loss_cls`` must be a sigmoid loss, DINO's focal loss).
    """

    def __init__(self,
                 class_names: Union[str, dict, Sequence[str]],
                 text_encoder: dict,
                 classifier: Optional[dict] = None,
                 **kwargs):
        names = training_vocabulary('OpenVocabDINOHead', class_names, kwargs)
        if not kwargs.get('loss_cls', {}).get('use_sigmoid', False):
            raise ValueError('OpenVocabDINOHead: loss_cls must be a sigmoid loss (DINO\'s focal '
                             'loss; the query classifier has no background column)')
        # Read by _init_layers, which DETRHead.__init__ calls.
        self.text_encoder = build_text_encoder('OpenVocabDINOHead', text_encoder)
        self._initial_names = names
        self._classifier_cfg = dict(classifier or {})
        super().__init__(num_classes=len(names), **kwargs)

    def _init_layers(self) -> None:
        """The regression branches as DeformableDETRHead builds them; the classification branches
        (one per decoder layer, and the encoder's) are query text classifiers sharing one encoding
        of the vocabulary."""
        super()._init_layers()
        embeddings = self.text_encoder.encode(self._initial_names)
        num_branches = 1 if self.share_pred_layer else self.num_pred_layer
        branches = [
            QueryTextClassifier(self.embed_dims, text_embeddings=embeddings,
                                class_names=self._initial_names, **self._classifier_cfg)
            for _ in range(num_branches)
        ]
        self.cls_branches = nn.ModuleList(branches * (self.num_pred_layer // num_branches))

    @property
    def class_names(self):
        return self.cls_branches[0].class_names

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Use ``class_names`` as the vocabulary of every branch (e.g. the test dataset's, novel
        names included)."""
        names = list(class_names)
        embeddings = self.text_encoder.encode(names)
        for branch in self.cls_branches:
            branch.set_text_embeddings(embeddings, names)
        self.num_classes = self.cls_out_channels = len(names)

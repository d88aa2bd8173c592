"""Open-vocabulary semantic FPN: every pixel's feature scored against class-name text embeddings.

mmseg's ``FPNHead`` ends in ``conv_seg``, a 1 x 1 convolution to a fixed class list. Here that
layer is a ``TextEmbeddingClassifier`` applied at every pixel (a 1 x 1 projection to the text space,
then the scaled cosine to each class embedding): the logits keep mmseg's [B, N, H, W] layout, so
mmseg's loss, resizing, inference and IoUMetric run unchanged, while the N classes are text
embeddings of their names and are replaced at test time by names never trained on
(``OpenVocabularyHook``). The per-pixel counterpart of ``OpenVocabMask2FormerHead`` for a CPU
budget.

No background embedding: the label maps this head is made for leave everything outside the named
classes unlabelled (the ignore index), so a background column would never be trained.
"""
from typing import Optional, Sequence, Union

from mmseg.models.decode_heads import FPNHead
from torch import Tensor

from genrep.registry import MODELS
from .text_embedding_cls_head import TextEmbeddingClassifier
from .vocabulary import training_vocabulary


@MODELS.register_module()
class OpenVocabFPNHead(FPNHead):
    """mmseg's semantic FPN head whose pixel classifier is a text-embedding classifier.

    Args:
        class_names: the training vocabulary: N names, the registered name of a dataset class or a
            dataset config (``dataset_class_names``); ``num_classes`` follows from it.
        text_encoder: config of the text encoder (``MiniLMTextEncoder``, ``CLIPTextEncoder``).
        classifier: further ``TextEmbeddingClassifier`` arguments (logit scale).
        kwargs: mmseg ``FPNHead`` arguments (``num_classes`` may be None or the same count).
    """

    def __init__(self,
                 class_names: Union[str, dict, Sequence[str]],
                 text_encoder: dict,
                 classifier: Optional[dict] = None,
                 **kwargs):
        names = training_vocabulary('OpenVocabFPNHead', class_names, kwargs)
        super().__init__(num_classes=len(names), **kwargs)
        # Replaces the 1 x 1 convolution; mmseg's init_cfg (override name='conv_seg') initialises
        # the classifier's projection as it would have the convolution.
        self.conv_seg = TextEmbeddingClassifier(
            self.channels, text_encoder=text_encoder, class_names=names, with_background=False,
            **(classifier or {}))

    @property
    def class_names(self):
        return self.conv_seg.class_names

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Features [B, C, H, W] -> logits [B, N, H, W], each pixel scored by the classifier."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.conv_seg(feat.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Use ``class_names`` as the vocabulary (e.g. the test dataset's classes)."""
        self.conv_seg.set_class_names(list(class_names))
        self.num_classes = self.out_channels = len(self.conv_seg.class_names)

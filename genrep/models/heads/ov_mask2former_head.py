"""Open-vocabulary Mask2Former: class queries scored against class-name text embeddings (A.4).

mmseg's ``Mask2FormerHead`` scores each query with a linear layer over a fixed class list
(``cls_embed``: [C] -> [N + 1], the last column 'no object'). Here that layer is a
``TextEmbeddingClassifier`` with a learned background embedding: the same [.., N + 1] layout, so
mmseg's and mmdet's matching, losses and inference rule run unchanged, but the N classes are text
embeddings of their names and can be replaced at test time by names never seen in training (train on
COCO-Stuff, test on ADE20K, as mmseg 1.2's open-vocabulary SAN configs do).
"""
from typing import Optional, Sequence, Union

from mmengine.config import ConfigDict
from mmseg.models.decode_heads import Mask2FormerHead

from genrep.registry import MODELS
from .text_embedding_cls_head import TextEmbeddingClassifier
from .vocabulary import training_vocabulary


@MODELS.register_module()
class OpenVocabMask2FormerHead(Mask2FormerHead):
    """mmseg's Mask2Former head whose query classifier is a text-embedding classifier.

    Args:
        class_names: the training vocabulary (N names), the registered name of a dataset class
            whose ``METAINFO['classes']`` are the names (e.g. ``'mmseg.COCOStuffDataset'``), or
            a dataset config (``dataset_class_names``); ``num_classes`` follows from it.
        text_encoder: config of the text encoder (``MiniLMTextEncoder``, ``CLIPTextEncoder``).
        no_object_weight: the classification weight of 'no object' (Mask2Former: 0.1); the class
            weights of ``loss_cls`` are [1] * N + [no_object_weight] for whatever vocabulary.
        classifier: further ``TextEmbeddingClassifier`` arguments (logit scale).
        kwargs: mmseg ``Mask2FormerHead`` arguments (``num_classes`` may be None; the class
            weights of ``loss_cls`` are set here).
    """

    def __init__(self,
                 class_names: Union[str, dict, Sequence[str]],
                 text_encoder: dict,
                 no_object_weight: float = 0.1,
                 classifier: Optional[dict] = None,
                 **kwargs):
        names = training_vocabulary('OpenVocabMask2FormerHead', class_names, kwargs)
        loss_cls = ConfigDict(kwargs.pop('loss_cls'))  # mmdet reads it by attribute
        loss_cls['class_weight'] = [1.0] * len(names) + [no_object_weight]
        super().__init__(num_classes=len(names), loss_cls=loss_cls, **kwargs)
        self.no_object_weight = no_object_weight
        self.cls_embed = TextEmbeddingClassifier(
            kwargs['feat_channels'], text_encoder=text_encoder, class_names=names,
            with_background=True, **(classifier or {}))

    @property
    def class_names(self):
        return self.cls_embed.class_names

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Use ``class_names`` as the vocabulary (e.g. the test dataset's classes)."""
        names = list(class_names)
        self.cls_embed.set_class_names(names)
        self.num_classes = self.out_channels = len(names)
        self.class_weight = [1.0] * len(names) + [self.no_object_weight]
        self.loss_cls.class_weight = self.class_weight

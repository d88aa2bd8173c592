"""Open-vocabulary RoI classification: region features scored against class-name text embeddings
(paper A.4, after BARON, Wu et al. 2023a).

mmdet's ``Shared2FCBBoxHead`` ends in ``fc_cls``, a linear layer to a fixed list of N classes plus
background. Here ``fc_cls`` is a ``TextEmbeddingClassifier`` with a learned background embedding:
each RoI feature is projected to a pseudo-word embedding in the text-embedding space and scored by
the scaled cosine to the N class-name embeddings and the background, so the logits keep mmdet's
[R, N + 1] layout (background last) and mmdet's targets, softmax cross-entropy, inference and
metrics run unchanged, while the N classes are text: a detector trained on base names detects
novel classes by their names at test (``set_class_names``, which ``OpenVocabularyHook`` calls with
each phase's dataset classes).

BARON projects a region to several pseudo words and runs them through the frozen text encoder;
here the projection gives one pseudo word that is compared directly (the text encoders are frozen
plain objects, and a transformer pass per RoI is beyond the CPU budget of the embedded job).
Box regression is class-agnostic: a box delta per class cannot follow a changing vocabulary.
"""
from typing import Optional, Sequence, Union

from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead

from genrep.registry import MODELS
from .text_embedding_cls_head import TextEmbeddingClassifier
from .vocabulary import training_vocabulary


@MODELS.register_module()
class OpenVocabBBoxHead(Shared2FCBBoxHead):
    """mmdet's two-fc RoI box head whose classifier is a text-embedding classifier.

    Args:
        class_names: the training vocabulary: N names, the registered name of a dataset class or
            a dataset config (``dataset_class_names``); ``num_classes`` follows from it.
        text_encoder: config of the text encoder (``MiniLMTextEncoder``, ``CLIPTextEncoder``).
        classifier: further ``TextEmbeddingClassifier`` arguments (logit scale).
        kwargs: mmdet ``Shared2FCBBoxHead`` arguments (``num_classes`` may be None or the same
            count; ``reg_class_agnostic`` must be True, the default here).
    """

    def __init__(self,
                 class_names: Union[str, dict, Sequence[str]],
                 text_encoder: dict,
                 classifier: Optional[dict] = None,
                 **kwargs):
        names = training_vocabulary('OpenVocabBBoxHead', class_names, kwargs)
        if not kwargs.setdefault('reg_class_agnostic', True):
            raise ValueError('OpenVocabBBoxHead: reg_class_agnostic must be True (per-class box '
                             'deltas cannot follow an open vocabulary)')
        if kwargs.get('loss_cls', {}).get('use_sigmoid', False):
            raise ValueError('OpenVocabBBoxHead: loss_cls must be a softmax loss (the background '
                             'is the learned embedding, the last column)')
        super().__init__(num_classes=len(names), **kwargs)
        # Replaces the linear classifier; mmdet's init_cfg (override name='fc_cls') initialises
        # the classifier's projection as it would have the linear layer.
        self.fc_cls = TextEmbeddingClassifier(
            self.cls_last_dim, text_encoder=text_encoder, class_names=names,
            with_background=True, **(classifier or {}))

    @property
    def class_names(self):
        return self.fc_cls.class_names

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Use ``class_names`` as the vocabulary (e.g. the test dataset's, novel names included)."""
        self.fc_cls.set_class_names(list(class_names))
        self.num_classes = self.fc_cls.num_classes

from .ov_fpn_head import OpenVocabFPNHead
from .ov_mask2former_head import OpenVocabMask2FormerHead
from .text_embedding_cls_head import TextEmbeddingClassifier, TextEmbeddingClsHead

__all__ = [
    'OpenVocabFPNHead', 'OpenVocabMask2FormerHead', 'TextEmbeddingClassifier', 'TextEmbeddingClsHead'
]

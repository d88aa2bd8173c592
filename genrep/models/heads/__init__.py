from .bins_depth_head import BinsDepthHead
from .ov_bbox_head import OpenVocabBBoxHead
from .ov_dino_head import OpenVocabDINOHead, QueryTextClassifier
from .ov_fpn_head import OpenVocabFPNHead
from .ov_mask2former_head import OpenVocabMask2FormerHead
from .scene_class_head import SceneClassHead
from .text_embedding_cls_head import TextEmbeddingClassifier, TextEmbeddingClsHead

__all__ = [
    'BinsDepthHead', 'OpenVocabBBoxHead', 'OpenVocabDINOHead', 'OpenVocabFPNHead',
    'OpenVocabMask2FormerHead', 'QueryTextClassifier', 'SceneClassHead', 'TextEmbeddingClassifier',
    'TextEmbeddingClsHead'
]

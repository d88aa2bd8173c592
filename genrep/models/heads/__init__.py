from .text_embedding_cls_head import TextEmbeddingClassifier, TextEmbeddingClsHead

__all__ = ['TextEmbeddingClassifier', 'TextEmbeddingClsHead']

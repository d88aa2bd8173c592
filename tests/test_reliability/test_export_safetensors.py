"""tools/model_converters/export_safetensors.py: checkpoint -> weights-only safetensors -> model."""
import json
import math
import os.path as osp
import sys

import pytest
import torch
from conftest import REPO_ROOT, load_tool
from safetensors import safe_open

from genrep.apis import init_model

TINY = osp.join(REPO_ROOT, 'tests/data/configs/fmnist_tiny.py')
TOOL = 'tools/model_converters/export_safetensors.py'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A checkpoint as mmengine writes one: meta, state_dict, optimizer state."""
    torch.manual_seed(0)
    model = init_model(TINY)
    optimizer = torch.optim.AdamW(model.parameters())
    model.head.fc.weight.sum().backward()
    optimizer.step()
    path = tmp_path_factory.mktemp('ckpt') / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1, iter=2, cfg='model = dict()'), state_dict=model.state_dict(),
                    optimizer=optimizer.state_dict()), path)
    return path


def test_round_trip_into_the_model(checkpoint, tmp_path, monkeypatch, capsys):
    out = tmp_path / 'model.safetensors'
    monkeypatch.setattr(sys, 'argv', ['export_safetensors.py', str(checkpoint), str(out)])
    tool = load_tool(TOOL)
    tool.main()
    assert 'tensors' in capsys.readouterr().out
    expected = torch.load(checkpoint, weights_only=True)['state_dict']
    weights = tool.load_weights(str(out))
    assert set(weights) == set(expected)
    for key, value in expected.items():
        assert torch.equal(weights[key], value) and weights[key].dtype == value.dtype, key
    torch.manual_seed(1)  # other initial weights, replaced by the file's
    model = init_model(TINY)
    assert not torch.equal(model.head.fc.weight, expected['head.fc.weight'])
    model.load_state_dict(weights, strict=True)
    assert torch.equal(model.head.fc.weight, expected['head.fc.weight'])
    with safe_open(str(out), 'pt') as f:
        metadata = f.metadata()
    assert metadata['epoch'] == '1' and metadata['iter'] == '2'
    assert metadata['source'] == checkpoint.name and json.loads(metadata['dropped']) == []


def test_prefix_keeps_a_submodule(checkpoint, tmp_path):
    weights = load_tool(TOOL).export(str(checkpoint), str(tmp_path / 'head.safetensors'),
                                 prefix='head.')
    assert set(weights) == {'fc.weight', 'fc.bias'}
    head = torch.nn.Module()
    head.fc = torch.nn.Linear(32, 10)
    head.load_state_dict(load_tool(TOOL).load_weights(str(tmp_path / 'head.safetensors')))


def test_refuses_non_finite_weights_and_bad_files(checkpoint, tmp_path):
    tool = load_tool(TOOL)
    state = torch.load(checkpoint, weights_only=True)
    state['state_dict']['head.fc.bias'][3] = math.nan
    poisoned = tmp_path / 'nan.pth'
    torch.save(state, poisoned)
    with pytest.raises(ValueError, match=r'nan.pth: weight head.fc.bias holds NaN'):
        tool.export(str(poisoned), str(tmp_path / 'nan.safetensors'))
    assert not (tmp_path / 'nan.safetensors').exists()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(RuntimeError, match=f'checkpoint {truncated} cannot be read'):
        tool.export(str(truncated), str(tmp_path / 'x.safetensors'))
    with pytest.raises(ValueError, match='no tensor under the prefix'):
        tool.export(str(checkpoint), str(tmp_path / 'x.safetensors'), prefix='nothing.')


def test_init_model_reads_an_exported_file_with_its_dropped_keys_and_class_names(tmp_path):
    """A GenRep checkpoint exported without its semantic copy (--drop semantic_denoiser.), as the
    model zoo ships it: init_model loads it (the dropped keys may be missing, nothing else),
    with the checkpoint's class names, and predicts as the checkpoint does."""
    stage1 = osp.join(REPO_ROOT, 'tests/data/configs/fmnist_genrep_tiny_stage1.py')
    torch.manual_seed(0)
    model = init_model(stage1)
    classes = [f'class {i}' for i in range(10)]
    checkpoint = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1, dataset_meta=dict(classes=classes)),
                    state_dict=model.state_dict()), checkpoint)
    out = tmp_path / 'zoo.safetensors'
    written = load_tool(TOOL).export(str(checkpoint), str(out), drop=['semantic_denoiser.'])
    assert written and not any(key.startswith('semantic_denoiser.') for key in written)

    loaded = init_model(stage1, str(out))
    assert loaded.dataset_meta == dict(classes=classes)
    inputs = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        expected = init_model(stage1, str(checkpoint)).perception.extract_feat(inputs)
        got = loaded.perception.extract_feat(inputs)
    torch.testing.assert_close(got, expected)

    # a file that lacks a key it does not say it dropped is refused, naming the key
    sneaky = tmp_path / 'sneaky.safetensors'
    weights = dict(torch.load(checkpoint, weights_only=True)['state_dict'])
    weights.pop('perception.head.fc.weight')
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in weights.items()}, str(sneaky),
              metadata={'dropped': '["semantic_denoiser."]'})
    with pytest.raises(ValueError, match=r'perception\.head\.fc\.weight'):
        init_model(stage1, str(sneaky))

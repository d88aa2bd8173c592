"""demo/image_demo.py and demo/generation_demo.py as a user runs them (their main() with argv)."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from conftest import REPO_ROOT, load_tool
from genrep.apis import init_model
from genrep.datasets import FashionMNIST

CLS_CONFIG = osp.join(REPO_ROOT, 'tests/data/configs/fmnist_tiny.py')
GENREP_CONFIG = osp.join(REPO_ROOT, 'tests/data/configs/fmnist_genrep_tiny_stage1.py')


def checkpoint(config, path):
    torch.manual_seed(0)
    model = init_model(config)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


def test_image_demo_on_a_folder_prints_each_image_and_draws_it(tmp_path, capsys):
    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ('shoe', 'shirt'):
        pixels = rng.integers(0, 256, (28, 28)).astype(np.uint8)
        Image.fromarray(pixels).save(images / f'{name}.png')
    weights = checkpoint(CLS_CONFIG, tmp_path / 'model.pth')
    load_tool('demo/image_demo.py').main([str(images), CLS_CONFIG, weights,
                                  '--out-dir', str(tmp_path / 'out')])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f'classification: 2 images -> {tmp_path / "out" / "vis"}'
    assert all(line.split(': ')[1].split(' (')[0] in FashionMNIST.METAINFO['classes']
               for line in lines[-3:-1])
    assert sorted(os.listdir(tmp_path / 'out' / 'vis')) == ['shirt.png', 'shoe.png']

    with pytest.raises(FileNotFoundError, match='no such image or folder'):
        load_tool('demo/image_demo.py').main([str(tmp_path / 'missing'), CLS_CONFIG, weights])


def test_generation_demo_draws_the_named_classes_in_labelled_columns(tmp_path, capsys):
    weights = checkpoint(GENREP_CONFIG, tmp_path / 'model.pth')
    out = tmp_path / 'grid.png'
    demo = load_tool('demo/generation_demo.py')
    demo.main([GENREP_CONFIG, weights, '--classes', 'Trouser', '7', '--per-class', '2',
               '--steps', '2', '--out', str(out)])
    printed = capsys.readouterr().out.strip()
    model = init_model(GENREP_CONFIG, weights)
    scale = demo.config_guidance_scale(model.cfg)  # the config's test sampling, else 1
    assert printed.endswith(f'4 samples of Trouser, Sneaker (2 steps, guidance {scale:g}) -> {out}')
    grid = np.asarray(Image.open(out))
    header, cell = 14, 96  # 32 px samples enlarged 3x so that the names fit
    assert grid.shape == (header + 2 * cell, 2 * cell, 3)
    assert (grid[:header] < 128).any()  # the names are written
    # The cells are the model's own samples of the same seed, class-major, a column per class.
    samples, labels = model.sample_classes([1, 7], 2, 2, seed=0, guidance_scale=scale)
    assert labels.tolist() == [1, 1, 7, 7]
    expected = ((samples[3, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    cell_pixels = grid[header + cell:header + 2 * cell:3, cell::3, 0]
    np.testing.assert_array_equal(cell_pixels, expected)

    # --guidance-scale overrides the config's: 3 draws other samples than 1.
    grids = []
    for given in ('1', '3'):
        demo.main([GENREP_CONFIG, weights, '--classes', '7', '--per-class', '1', '--steps', '2',
                   '--guidance-scale', given, '--out', str(out)])
        assert f'(2 steps, guidance {given}) ->' in capsys.readouterr().out
        grids.append(np.asarray(Image.open(out)))
    assert not np.array_equal(*grids)
    assert demo.config_guidance_scale(dict(custom_hooks=[dict(
        type='genrep.GenerationEvalHook', sampling=dict(guidance_scale=5.0))])) == 5.0
    assert demo.config_guidance_scale(dict()) == 1.0

    with pytest.raises(ValueError, match="--classes 'Sandals': not a class of"):
        demo.main([GENREP_CONFIG, weights, '--classes', 'Sandals', '--out', str(out)])

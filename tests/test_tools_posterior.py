"""tools/analysis_tools/posterior.py: the teacher's p(y|x) on one image equals the estimator run by
hand on the same preprocessed image and noise, the evaluations it reports are the estimator's
count, and the head's column is its softmax restricted to the candidates."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, load_tool
from genrep.apis import init_model
from genrep.datasets import FashionMNIST
from genrep.diffusion.posteriors import restrict_posterior

CONFIG = osp.join(REPO_ROOT, 'tests/data/configs/fmnist_genrep_tiny_stage1.py')
TOOL = 'tools/analysis_tools/posterior.py'


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('posterior')
    torch.manual_seed(0)
    torch.save({'state_dict': init_model(CONFIG).state_dict()}, tmp / 'model.pth')
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp / 'image.png')
    return tmp


@pytest.mark.parametrize('candidates', [None, 3])
def test_teacher_against_the_estimator_by_hand(files, candidates, capsys):
    argv = [str(files / 'image.png'), CONFIG, str(files / 'model.pth'), '--seed', '3',
            '--show', '10', '--out', str(files / 'out.json')]
    if candidates:
        argv += ['--candidates', str(candidates)]
    result = load_tool(TOOL).main(argv)
    assert json.load(open(files / 'out.json')) == result

    model = init_model(CONFIG, str(files / 'model.pth'))
    padded = np.zeros((32, 32), np.float32)
    padded[:28, :28] = np.asarray(Image.open(files / 'image.png'), np.float32)
    x = torch.from_numpy((padded - 127.5) / 127.5)[None, None]
    with torch.no_grad():
        head = model(x, mode='predict')[0].pred_score
    count = candidates or 10
    class_ids = head.topk(count).indices.sort().values[None]
    generator = torch.Generator().manual_seed(3)
    teacher = model.posterior.posterior(model.denoiser, model.backbone.encode(x), class_ids,
                                        generator)[0]
    head = restrict_posterior(head[None], class_ids)[0]

    assert result['candidates'] == count and result['num_classes'] == 10
    assert result['denoiser_evaluations'] == model.posterior.num_evaluations() * count
    assert result['teacher_seconds'] > 0
    rows = result['classes']
    assert len(rows) == count
    assert [r['teacher'] for r in rows] == sorted((r['teacher'] for r in rows), reverse=True)
    for row in rows:
        k = class_ids[0].tolist().index(row['index'])
        assert row['teacher'] == pytest.approx(teacher[k].item(), abs=1e-6)
        assert row['head'] == pytest.approx(head[k].item(), abs=1e-6)
        assert row['name'] == FashionMNIST.METAINFO['classes'][row['index']]
    printed = capsys.readouterr().out
    assert f'{result["denoiser_evaluations"]} denoiser evaluations' in printed


def test_a_model_without_teacher_is_refused_in_one_line(files):
    config = osp.join(REPO_ROOT, 'tests/data/configs/fmnist_tiny.py')
    torch.manual_seed(0)
    torch.save({'state_dict': init_model(config).state_dict()}, files / 'plain.pth')
    with pytest.raises(ValueError, match='model.posterior is not set'):
        load_tool(TOOL).main([str(files / 'image.png'), config, str(files / 'plain.pth')])

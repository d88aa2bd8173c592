"""demo/image_demo.py on a user's own images of odd sizes and modes (an RGBA 415 x 321 photo, a
palette image, a grayscale one, a 28 x 28 JPEG), for the shipped config of each task with random
weights (no shipped checkpoint exists): one line per file, named, in file-name order; the
drawing of each under its name at a readable size; the conversion said once in the log."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from rich.live import Live

from conftest import REPO_ROOT, load_tool
from genrep.apis import init_model
from genrep.apis import inferencers as inferencers_module
from genrep.datasets import FashionMNIST

SCENE_CLASSES = ['bird', 'boat', 'dog', 'flower', 'fruit', 'tree']
# name -> (mode, (H, W)); the names sort in this order
IMAGES = {
    'a_garment.png': ('RGBA', (321, 415)),
    'b_palette.png': ('P', (33, 47)),
    'c_gray.png': ('L', (21, 30)),
    'd_small.jpg': ('RGB', (28, 28)),
}
# task -> the shipped config the demo runs (the main job's with the tests' tiny UNet)
CONFIGS = {
    'classification': 'tests/data/configs/fmnist_tiny.py',
    'segmentation': 'configs/genrep/scenes_seg_unet.py',
    'depth': 'configs/genrep/scenes_depth_unet.py',
    'detection': 'configs/genrep/scenes_ovdet_unet.py',
}


def write_images(folder):
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name, (mode, (h, w)) in IMAGES.items():
        channels = {'RGBA': 4, 'RGB': 3}.get(mode, 1)
        pixels = rng.integers(0, 256, (h, w, channels) if channels > 1 else (h, w))
        image = Image.fromarray(pixels.astype(np.uint8))
        if mode == 'RGBA':  # a transparent left half
            pixels[:, :w // 2, 3] = 0
            image = Image.fromarray(pixels.astype(np.uint8), 'RGBA')
        elif mode == 'P':
            image = image.convert('P')
        image.save(folder / name)
    (folder / 'notes.txt').write_text('not an image: the demo skips it')


def write_scene_classes():
    """The classes.json of the scenes trees the configs read (relative to the working dir)."""
    trees = {'ade': dict(classes=SCENE_CLASSES, palette=[[10 * i, 0, 0] for i in range(6)]),
             'nyu': dict(classes=SCENE_CLASSES, train=[], test=[])}
    for tree, meta in trees.items():
        os.makedirs(osp.join('data/scenes', tree), exist_ok=True)
        with open(osp.join('data/scenes', tree, 'classes.json'), 'w') as f:
            json.dump(meta, f)


def drawing_name(task, name):
    """mmpretrain writes ``<stem>.png``; mmseg and mmdet keep the file's name."""
    return osp.splitext(name)[0] + '.png' if task == 'classification' else name


def drawn_size(task, h, w):
    """(W, H) of the drawing: classification enlarges a short edge under 224 to 224 (mmpretrain's
    ``resize``, rounding the long edge); the other toolkits draw at the image's own size, mmseg
    a depth map below the image."""
    if task == 'depth':
        return (w, 2 * h)
    if task != 'classification' or min(h, w) >= 224:
        return (w, h)
    scale = 224 / min(h, w)
    return (int(w * scale + 0.5), int(h * scale + 0.5))


@pytest.mark.parametrize('task', sorted(CONFIGS))
def test_demo_on_odd_sizes_and_modes(task, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_scene_classes()
    write_images(tmp_path / 'images')
    config = osp.join(REPO_ROOT, CONFIGS[task])
    torch.manual_seed(0)
    model = init_model(config)
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'model.pth')
    logged = []
    monkeypatch.setattr(inferencers_module, 'print_log',
                        lambda message, **kwargs: logged.append(message))
    # Every toolkit's progress bar is a rich Live display; off a terminal (here: pytest's
    # captured stdout) the demo's printed lines are the progress and no bar may start (a bar's
    # last frame ends without a line end and the first printed line runs on from it).
    bars = []
    monkeypatch.setattr(Live, 'start', lambda live, refresh=False: bars.append(live))

    load_tool('demo/image_demo.py').main(['images', config, str(tmp_path / 'model.pth'), '--out-dir', 'out'])

    assert bars == []

    conversion = [line for line in logged if line.startswith('inference input:')]
    assert len(conversion) == 1
    assert ('read as grayscale' if task == 'classification' else '3-channel colour') \
        in conversion[0]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f'{task}: {len(IMAGES)} images -> out/vis'
    printed = lines[-1 - len(IMAGES):-1]
    assert [line.split(': ')[0] for line in printed] == list(IMAGES)
    for line in printed:
        said = line.split(': ', 1)[1]
        if task == 'classification':
            assert said.split(' (')[0] in FashionMNIST.METAINFO['classes']
        elif task == 'segmentation':
            assert said.startswith('classes: ')
            assert set(said[len('classes: '):].split(', ')) <= set(SCENE_CLASSES)
        elif task == 'depth':
            low, high = map(float, said[len('depth '):].split(' .. '))
            assert low <= high
        else:
            assert said.split(' boxes')[0].isdigit()

    drawings = {name: drawing_name(task, name) for name in IMAGES}
    assert sorted(os.listdir('out/vis')) == sorted(drawings.values())
    for name, (_, (h, w)) in IMAGES.items():
        size = Image.open(osp.join('out/vis', drawings[name])).size
        assert size == drawn_size(task, h, w), name


def test_the_main_jobs_model_reads_an_rgba_photo_as_its_dataset_gave_images(tmp_path):
    """The 415 x 321 RGBA photo, by hand: laid on black (the pipeline's pad value), grayscale,
    fitted into Fashion-MNIST's 28 x 28 (-> 28 x 22), padded to 32 x 32, mapped to [-1, 1]:
    the inferencer's scores equal the model's on that tensor."""
    from genrep.apis import build_inferencer
    write_images(tmp_path / 'images')
    config = osp.join(REPO_ROOT, CONFIGS['classification'])
    torch.manual_seed(0)
    torch.save({'state_dict': init_model(config).state_dict()}, tmp_path / 'model.pth')
    inferencer = build_inferencer(config, str(tmp_path / 'model.pth'))
    path = str(tmp_path / 'images' / 'a_garment.png')
    result = inferencer(path)[0]

    rgba = Image.open(path)
    ground = Image.new('RGBA', rgba.size, (0, 0, 0, 255))
    gray = np.asarray(Image.alpha_composite(ground, rgba).convert('L'))
    assert gray[:, :207].max() == 0  # the transparent half is the background
    fitted = cv2.resize(gray, (28, 22), interpolation=cv2.INTER_AREA)
    padded = np.zeros((32, 32), np.float32)
    padded[:22, :28] = fitted
    x = torch.from_numpy((padded - 127.5) / 127.5)[None, None]
    with torch.no_grad():
        scores = inferencer.model(x, mode='predict')[0].pred_score
    np.testing.assert_allclose(result['pred_scores'], scores.numpy(), atol=1e-5)


def test_a_folder_without_images_is_named(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no image file'):
        load_tool('demo/image_demo.py').main([str(tmp_path / 'empty'), 'config.py', 'model.pth'])

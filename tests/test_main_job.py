"""The real pipelines on the real Debian Fashion-MNIST, shortened: the perception-only job (about
three minutes on 2 cores) and GenRep's stages 1-2 from the shipped denoiser with the test (about
four). Marked slow, run by `make test-slow` and CI."""
import os.path as osp
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, require_debian_data

DEBIAN_ROOT = '/usr/share/datasets/fashion-mnist'


@pytest.mark.slow
def test_main_config_learns_fashion_mnist(tmp_path):
    """200 iterations of the main config on 25,600 real training images reach well above chance
    (10%) on 2,000 real test images; then tools/test.py reproduces the number from the checkpoint."""
    require_debian_data(DEBIAN_ROOT)
    config = 'configs/genrep/fmnist_unet_cls.py'
    options = [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'train_dataloader.dataset.indices=25600', 'val_dataloader.dataset.indices=2000',
        'test_dataloader.dataset.indices=2000',
        'param_scheduler.1.end=1'
    ]
    train = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path),
                            '--cfg-options', *options],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]
    val = re.findall(r'accuracy/top1: ([\d.]+)', train.stdout + train.stderr)
    assert val and float(val[-1]) > 60.0, val

    from genrep.engine import read_last_checkpoint
    ckpt = read_last_checkpoint(str(tmp_path))
    test = subprocess.run([sys.executable, 'tools/test.py', config, ckpt, '--work-dir',
                           str(tmp_path / 'test'), '--cfg-options', *options],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert test.returncode == 0, test.stderr[-3000:]
    tested = re.findall(r'accuracy/top1: ([\d.]+)', test.stdout + test.stderr)
    assert tested and tested[-1] == val[-1]


def run(*args, timeout=900):
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc


@pytest.mark.slow
def test_genrep_stages_on_real_data(tmp_path):
    """What `make main` runs, shortened, on the real data: stage 1 with the distillation from the
    shipped pretrained denoiser (60 iterations), stage 2 (20), then tools/test.py with FID/IS/CAS of 100 samples (and
    FID/IS/P/R in MobileNetV2 space against 100 real images). The test
    reports every metric in its JSON, writes the sample grid and the reliability diagram, and the
    shared denoiser still classifies well above chance."""
    require_debian_data(DEBIAN_ROOT)
    import json
    stage = 'configs/genrep/fmnist_genrep_stage{}.py'.format
    net = tmp_path / 'feature_net.pth'
    run('tools/analysis_tools/train_feature_net.py', '--out', str(net), '--epochs', '1')
    test_images = ['val_dataloader.dataset.indices=2000', 'test_dataloader.dataset.indices=2000']
    run('tools/train.py', stage(1), '--work-dir', str(tmp_path / 's1'), '--cfg-options',
        'train_dataloader.dataset.indices=7680', *test_images)
    # The hook's second metric (MobileNetV2 space) against 100 real images, not 2,000.
    hook = [f'custom_hooks.1.metric.0.feature_net={net}', 'custom_hooks.1.metric.1.num_real=100',
            'custom_hooks.1.metric.1.prc_num_real=100', 'custom_hooks.1.samples_per_class=10',
            'custom_hooks.1.num_steps=10']
    run('tools/train.py', stage(2), '--work-dir', str(tmp_path / 's2'), '--cfg-options',
        'train_dataloader.dataset.indices=2560', f'load_from={tmp_path / "s1" / "epoch_1.pth"}',
        *test_images, *hook)
    checkpoint = str(tmp_path / 's2' / 'epoch_1.pth')
    run('tools/test.py', stage(2), checkpoint, '--work-dir', str(tmp_path / 'test'),
        '--out', str(tmp_path / 'predictions.pkl'), '--cfg-options', *test_images, *hook)

    scores = json.loads(next((tmp_path / 'test').glob('*/*.json')).read_text())
    assert scores['accuracy/top1'] > 50.0, scores
    # Top-1 and ECE against the test's own predictions (tools/test.py --out), by hand.
    import mmengine
    import torch
    from metric_oracles import calibration_error
    predictions = mmengine.load(str(tmp_path / 'predictions.pkl'))
    probs = torch.stack([torch.as_tensor(p['pred_score']) for p in predictions])
    labels = torch.tensor([int(p['gt_label']) for p in predictions])
    assert len(labels) == 2000
    top1 = (probs.argmax(1) == labels).double().mean().item() * 100
    assert scores['accuracy/top1'] == pytest.approx(top1, abs=1e-3)
    assert scores['calibration/ece'] == pytest.approx(calibration_error(probs, labels), abs=1e-4)
    assert 0.0 < scores['generation/fid'] < float('inf') and scores['generation/is'] >= 1.0
    assert 0.0 < scores['generation/fid_mobilenet_v2'] < float('inf')
    assert 'generation/precision_mobilenet_v2' in scores  # its value: test_generation_metrics
    # CAS: the feature net's top-1 on the samples the hook draws from the checkpoint.
    from genrep.apis import init_model
    from genrep.engine import GenerationEvalHook
    from genrep.evaluation.metrics import load_feature_net, to_feature_net_input
    from genrep.evaluation.metrics.generation import to_uint8_image
    options = dict(option.split('=', 1) for option in hook[3:])
    model = init_model(osp.join(REPO_ROOT, stage(2)), checkpoint, 'cpu',
                       {key: int(value) for key, value in options.items()})
    hook_cfg = {k: v for k, v in model.cfg.custom_hooks[1].items() if k != 'type'}
    images, classes = GenerationEvalHook(**hook_cfg).generate(model.eval())
    with torch.no_grad():
        predicted = load_feature_net(str(net)).logits(to_feature_net_input(
            torch.stack([to_uint8_image(image) for image in images]))).argmax(1)
    assert scores['generation/cas'] == pytest.approx((predicted == classes).double().mean().item())
    assert (tmp_path / 'test' / 'samples.png').is_file()
    assert list((tmp_path / 'test').glob('*/vis_data/vis_image/reliability_diagram_*.png'))

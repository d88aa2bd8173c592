"""tools/train.py and tools/test.py as a user runs them: a 2-iteration training, --resume, test, and
bad input that must end in one clear line."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from data_fixtures import write_fashion_mnist


TINY_CONFIG = 'tests/data/configs/fmnist_tiny.py'


def run_tool(repo_root, tool, *args):
    return subprocess.run([sys.executable, f'tools/{tool}', *args],
                          cwd=repo_root,
                          capture_output=True,
                          text=True,
                          timeout=600)


def data_options(root):
    return [f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def last_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ''


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Two iterations (8 images, batch 4) of tools/train.py, then --resume for a second epoch."""
    from conftest import REPO_ROOT
    tmp = tmp_path_factory.mktemp('train')
    data = write_fashion_mnist(tmp / 'data', num_train=8, num_test=8)
    work_dir = tmp / 'work'
    first = run_tool(REPO_ROOT, 'train.py', TINY_CONFIG, '--work-dir', str(work_dir),
                     '--cfg-options', *data_options(data))
    assert first.returncode == 0, first.stderr[-3000:]
    first_ckpt = torch.load(work_dir / 'epoch_1.pth', map_location='cpu', weights_only=True)
    resumed = run_tool(REPO_ROOT, 'train.py', TINY_CONFIG, '--work-dir', str(work_dir), '--resume',
                       '--cfg-options', *data_options(data), 'train_cfg.max_epochs=2')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return dict(data=data, work_dir=work_dir, first=first, resumed=resumed, first_ckpt=first_ckpt)


def test_two_iterations_then_resume(trained):
    work_dir = trained['work_dir']
    assert trained['first_ckpt']['meta']['iter'] == 2
    assert trained['first_ckpt']['meta']['epoch'] == 1
    log = trained['resumed'].stdout + trained['resumed'].stderr
    assert 'resumed epoch: 1, iter: 2' in log, log[-3000:]
    second = torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=True)
    assert second['meta']['epoch'] == 2 and second['meta']['iter'] == 4
    # The resumed run started from the first run's weights, not from a fresh initialisation.
    key = 'head.fc.weight'
    assert not torch.equal(second['state_dict'][key], trained['first_ckpt']['state_dict'][key])
    assert 'Epoch(train) [2][2/2]' in log
    assert 'Epoch(train) [1]' not in log


def test_test_tool_evaluates_the_checkpoint(trained, repo_root, tmp_path):
    ckpt = trained['work_dir'] / 'epoch_2.pth'
    out = tmp_path / 'preds.pkl'
    proc = run_tool(repo_root, 'test.py', TINY_CONFIG, str(ckpt), '--work-dir', str(tmp_path),
                    '--out', str(out), '--cfg-options', *data_options(trained['data']))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'accuracy/top1' in proc.stdout + proc.stderr
    import pickle
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8 and 'pred_score' in preds[0]


def test_missing_dataset_is_one_clear_line(repo_root, tmp_path):
    missing = tmp_path / 'nowhere'
    proc = run_tool(repo_root, 'train.py', TINY_CONFIG, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *data_options(missing))
    assert proc.returncode != 0
    line = last_line(proc)
    assert 'FileNotFoundError' in line and str(missing) in line, line
    assert 'apt-get install dataset-fashion-mnist' in line, line


def test_truncated_idx_file_is_one_clear_line(repo_root, tmp_path):
    data = write_fashion_mnist(tmp_path / 'data', suffix='')
    images = data / 'train-images-idx3-ubyte'
    images.write_bytes(images.read_bytes()[:-100])
    proc = run_tool(repo_root, 'train.py', TINY_CONFIG, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *data_options(data))
    assert proc.returncode != 0
    line = last_line(proc)
    assert str(images) in line and 'truncated' in line, line


def test_unknown_config_key_is_one_clear_line(repo_root, tmp_path):
    data = write_fashion_mnist(tmp_path / 'data')
    proc = run_tool(repo_root, 'train.py', TINY_CONFIG, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *data_options(data), 'model.backbone.not_a_key=1')
    assert proc.returncode != 0
    line = last_line(proc)
    assert 'not_a_key' in line and 'DiffusionBackbone' in line, line
    assert not osp.exists(tmp_path / 'w' / 'epoch_1.pth')


def test_missing_checkpoint_is_one_clear_line(repo_root, tmp_path):
    proc = run_tool(repo_root, 'test.py', TINY_CONFIG, str(tmp_path / 'none.pth'))
    assert proc.returncode != 0
    line = last_line(proc)
    assert 'FileNotFoundError' in line and 'none.pth' in line, line


def test_genrep_stage1_then_stage2(repo_root, tmp_path):
    """Stage 1 (perception + distillation) trains 2 iterations; stage 2 loads it and trains jointly
    with gradient alignment, logging the gradient cosine, and fills its semantic EMA denoiser."""
    data = write_fashion_mnist(tmp_path / 'data', num_train=8, num_test=8)
    stage1 = run_tool(repo_root, 'train.py', 'tests/data/configs/fmnist_genrep_tiny_stage1.py',
                      '--work-dir', str(tmp_path / 's1'), '--cfg-options', *data_options(data))
    assert stage1.returncode == 0, stage1.stderr[-3000:]
    assert 'loss_gen_distil' in stage1.stdout + stage1.stderr
    stage2 = run_tool(repo_root, 'train.py', 'tests/data/configs/fmnist_genrep_tiny_stage2.py',
                      '--work-dir', str(tmp_path / 's2'), '--cfg-options', *data_options(data),
                      f'load_from={tmp_path / "s1" / "epoch_1.pth"}')
    assert stage2.returncode == 0, stage2.stderr[-3000:]
    log = stage2.stdout + stage2.stderr
    for key in ('grad_cos_sim', 'grad_alpha', 'loss_percept', 'loss_genera', 'loss_rep_align'):
        assert key in log, key
    ckpt = torch.load(tmp_path / 's2' / 'epoch_1.pth', map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    assert bool(state['semantic_initialized'])
    first = torch.load(tmp_path / 's1' / 'epoch_1.pth', map_location='cpu', weights_only=True)
    key = 'perception.backbone.denoiser.model.conv_in.weight'
    assert not torch.equal(state[key], first['state_dict'][key])

    # Testing the checkpoint adds FID, IS and CAS of its samples to the epoch's metrics: the log
    # line and the JSON file of the test (the file the ablation tool reads).
    from genrep.evaluation.metrics import FashionMNISTFeatureNet, save_feature_net
    net = tmp_path / 'net.pth'
    feature_net = FashionMNISTFeatureNet().eval()
    save_feature_net(feature_net, str(net), 0.0)
    tested = run_tool(repo_root, 'test.py', 'tests/data/configs/fmnist_genrep_tiny_stage2.py',
                      str(tmp_path / 's2' / 'epoch_1.pth'), '--work-dir', str(tmp_path / 't2'),
                      '--cfg-options', *data_options(data),
                      f'custom_hooks.1.metric.feature_net={net}',
                      f'custom_hooks.1.metric.real_dataset.data_root={data}')
    assert tested.returncode == 0, tested.stderr[-3000:]
    epoch_line = [line for line in (tested.stdout + tested.stderr).splitlines()
                  if 'Epoch(test)' in line][-1]
    assert 'generation/fid' in epoch_line and 'calibration/ece' in epoch_line, epoch_line
    import json
    scores = json.loads(next((tmp_path / 't2').glob('*/*.json')).read_text())
    assert {'accuracy/top1', 'calibration/ece', 'generation/fid', 'generation/cas'} <= set(scores)
    # CAS by hand: the feature net's top-1 on the samples the hook draws from the checkpoint
    from genrep.apis import init_model
    from genrep.engine import GenerationEvalHook
    from genrep.evaluation.metrics import to_feature_net_input
    from genrep.evaluation.metrics.generation import to_uint8_image
    model = init_model(osp.join(repo_root, 'tests/data/configs/fmnist_genrep_tiny_stage2.py'),
                       str(tmp_path / 's2' / 'epoch_1.pth'), 'cpu')
    hook_cfg = {k: v for k, v in model.cfg.custom_hooks[1].items() if k != 'type'}
    images, labels = GenerationEvalHook(**hook_cfg).generate(model.eval())
    with torch.no_grad():
        predicted = feature_net.logits(to_feature_net_input(
            torch.stack([to_uint8_image(image) for image in images]))).argmax(1)
    assert scores['generation/cas'] == pytest.approx((predicted == labels).float().mean().item())
    assert (tmp_path / 't2' / 'samples.png').is_file()
    # the reliability diagram went to the run's visualizer, under its work dir
    assert list((tmp_path / 't2').glob('*/vis_data/vis_image/reliability_diagram_*.png'))

    # The same checkpoint draws class-conditional samples (tools/sample.py).
    grid = tmp_path / 'samples' / 'grid.png'
    sample = run_tool(repo_root, 'sample.py', 'tests/data/configs/fmnist_genrep_tiny_stage2.py',
                      str(tmp_path / 's2' / 'epoch_1.pth'), '--out', str(grid), '--per-class',
                      '2', '--steps', '3', '--classes', '1', '4', '7')
    assert sample.returncode == 0, sample.stderr[-3000:]
    from PIL import Image
    assert Image.open(grid).size == (3 * 32, 2 * 32)
    import numpy as np
    drawn = np.load(tmp_path / 'samples' / 'grid.npz')
    assert drawn['arr_1'].tolist() == [1, 1, 4, 4, 7, 7]
    assert drawn['arr_0'].shape == (6, 32, 32, 1) and drawn['arr_0'].dtype == np.uint8


def test_ablation_tool_switches_the_components(repo_root, tmp_path):
    """tools/analysis_tools/ablation.py on the tiny configs, rows 1 (all off) and 5 (all on): the
    table has both rows and both stage-1 settings, and each run trained what its row says."""
    import json

    from genrep.evaluation.metrics import FashionMNISTFeatureNet, save_feature_net
    data = write_fashion_mnist(tmp_path / 'data', num_train=8, num_test=8)
    start = run_tool(repo_root, 'train.py', 'tests/data/configs/fmnist_genrep_tiny_stage1.py',
                     '--work-dir', str(tmp_path / 's0'), '--cfg-options', *data_options(data))
    assert start.returncode == 0, start.stderr[-3000:]
    net = tmp_path / 'net.pth'
    save_feature_net(FashionMNISTFeatureNet(), str(net), 0.0)
    work = tmp_path / 'ablation'
    proc = run_tool(repo_root, 'analysis_tools/ablation.py', '--rows', '1', '5',
                    '--stage0', str(tmp_path / 's0' / 'epoch_1.pth'), '--stage1-iters', '1',
                    '--stage2-iters', '1', '--batch-size', '4', '--samples-per-class', '2',
                    '--sample-steps', '2', '--work-dir', str(work),
                    '--stage1-config', 'tests/data/configs/fmnist_genrep_tiny_stage1.py',
                    '--stage2-config', 'tests/data/configs/fmnist_genrep_tiny_stage2.py',
                    '--cfg-options', *data_options(data), '--stage2-cfg-options',
                    f'custom_hooks.1.metric.feature_net={net}',
                    f'custom_hooks.1.metric.real_dataset.data_root={data}')
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    table = json.loads((work / 'table8.json').read_text())
    assert set(table['rows']) == {'1', '5'} and set(table['stage1']) == {'False', 'True'}
    for scores in [*table['rows'].values(), *table['stage1'].values()]:
        assert {'accuracy/top1', 'calibration/ece'} <= set(scores)
    assert {'generation/fid', 'generation/cas'} <= set(table['rows']['1'])
    assert 'row' in proc.stdout and (work / 'table8.txt').read_text().strip() in proc.stdout

    def log(run):
        return next((work / run).glob('*/*.log')).read_text()

    assert 'loss_gen_distil' in log('stage1_distil')
    assert 'loss_gen_distil' not in log('stage1_plain')
    assert 'loss_rep_align' in log('row5') and 'loss_gen_distil' in log('row5')
    assert 'loss_rep_align' not in log('row1') and 'loss_gen_distil' not in log('row1')
    assert 'grad_alpha: 1.0000' in log('row1')  # no damping: alpha = 1 whatever the cosine
    row1 = torch.load(work / 'row1' / 'epoch_1.pth', map_location='cpu', weights_only=True)
    assert not any(k.startswith('semantic_noise.') for k in row1['state_dict'])
    row5 = torch.load(work / 'row5' / 'epoch_1.pth', map_location='cpu', weights_only=True)
    assert any(k.startswith('semantic_noise.') for k in row5['state_dict'])


def test_teacher_temperature_fit_by_hand(repo_root):
    """Two classes, log-likelihood margin z for the labelled class on a fraction f of the images
    and -z on the rest: the NLL of softmax(ll / tau) is smallest where sigmoid(z / tau) = f, i.e.
    tau = z / logit(f)."""
    from conftest import load_tool
    tool = load_tool('tools/analysis_tools/teacher_calibration.py')
    z, f, n = 0.8, 0.75, 400
    log_lik = torch.zeros(n, 2)
    labels = torch.zeros(n, dtype=torch.long)
    log_lik[:int(f * n), 0] = z
    log_lik[int(f * n):, 1] = z
    expected = z / torch.logit(torch.tensor(f)).item()
    assert tool.fit_temperature(log_lik, labels) == pytest.approx(expected, rel=0.03)


def test_teacher_calibration_tool(repo_root, tmp_path):
    import json

    from genrep.apis import init_model
    data = write_fashion_mnist(tmp_path / 'data', num_train=8, num_test=8)
    config = 'tests/data/configs/fmnist_genrep_tiny_stage1.py'
    torch.manual_seed(0)
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': init_model(osp.join(repo_root, config)).state_dict()}, checkpoint)
    out = tmp_path / 'teacher.json'
    proc = run_tool(repo_root, 'analysis_tools/teacher_calibration.py', config, str(checkpoint),
                    '--num-images', '6', '--batch-size', '4', '--out', str(out),
                    '--cfg-options', *data_options(data))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result['images'] == 6
    nlls = {row['temperature']: row['nll'] for row in result['rows']}
    assert nlls[result['fitted_temperature']] == min(nlls.values())
    # The same teacher estimates in this process (the tool's images and noise, seed 0): the
    # teacher's top-1 and each row's NLL by hand.
    from genrep.apis.teacher import split_image_indices, teacher_log_likelihoods
    options = dict(option.split('=', 1) for option in data_options(data))
    model = init_model(osp.join(repo_root, config), str(checkpoint), 'cpu', options)
    dataset, indices = split_image_indices(model, 'train', 6, 0)
    estimates = teacher_log_likelihoods(model, dataset, indices, 4, 0, verbose=False)
    log_lik, labels = estimates['log_lik'], estimates['labels']
    top1 = (log_lik.argmax(1) == labels).float().mean().item() * 100
    assert result['teacher_top1'] == pytest.approx(top1)
    for row in result['rows']:
        expected = torch.nn.functional.cross_entropy(log_lik / row['temperature'], labels)
        assert row['nll'] == pytest.approx(expected.item(), rel=1e-5), row
    assert 'NLL-fitted' in proc.stdout


def test_teacher_staleness_tool(repo_root, tmp_path):
    """The same checkpoint twice: no drift (KL 0, every argmax agrees) while a second noise draw
    differs; a changed denoiser drifts, and the ratio is drift over redraw."""
    import json

    from genrep.apis import init_model
    data = write_fashion_mnist(tmp_path / 'data', num_train=8, num_test=8)
    config = 'tests/data/configs/fmnist_genrep_tiny_stage1.py'
    torch.manual_seed(0)
    state = init_model(osp.join(repo_root, config)).state_dict()
    old, new = tmp_path / 'old.pth', tmp_path / 'new.pth'
    torch.save({'state_dict': state}, old)
    changed = {k: v + 0.05 * torch.randn_like(v) if 'denoiser' in k and v.is_floating_point()
               else v for k, v in state.items()}
    torch.save({'state_dict': changed}, new)
    results = {}
    for name, pair in [('same', (old, old)), ('changed', (old, new))]:
        out = tmp_path / f'{name}.json'
        proc = run_tool(repo_root, 'analysis_tools/teacher_staleness.py', config, str(pair[0]),
                        str(pair[1]), '--num-images', '6', '--batch-size', '4', '--out',
                        str(out), '--cfg-options', *data_options(data))
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads(out.read_text())
    same, changed = results['same'], results['changed']
    assert same['images'] == 6
    assert same['drift'] == {'kl': 0.0, 'agreement': 1.0}
    assert same['redraw']['kl'] > 0
    assert same['top1']['stale'] == same['top1']['fresh']
    assert changed['drift']['kl'] > 0
    assert changed['drift_over_redraw'] == pytest.approx(
        changed['drift']['kl'] / changed['redraw']['kl'])

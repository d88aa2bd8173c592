"""tools/sample.py as a user runs it: the standard .npz (arr_0 uint8 NHWC, arr_1 labels) beside the
grid, argument checks ending in one clear line, and a stopped run resumed chunk by chunk."""
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image
from test_tools import last_line, run_tool

from genrep.apis import init_model

CONFIG = 'tests/data/configs/fmnist_genrep_tiny_stage2.py'


@pytest.fixture(scope='module')
def tool():
    from conftest import load_tool
    return load_tool('tools/sample.py')


@pytest.fixture(scope='module')
def model():
    from conftest import REPO_ROOT
    torch.manual_seed(0)
    return init_model(osp.join(REPO_ROOT, CONFIG))


@pytest.fixture(scope='module')
def checkpoint(model, tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def test_sample_tool_writes_the_standard_npz_and_the_grid(repo_root, checkpoint, tmp_path):
    grid = tmp_path / 'out' / 'grid.png'
    proc = run_tool(repo_root, 'sample.py', CONFIG, str(checkpoint), '--out', str(grid),
                    '--per-class', '3', '--grid-rows', '2', '--steps', '2', '--classes', '1',
                    '4', '7', '--batch-size', '4')
    assert proc.returncode == 0, proc.stderr[-3000:]
    drawn = np.load(tmp_path / 'out' / 'grid.npz')
    assert sorted(drawn.files) == ['arr_0', 'arr_1']
    images, labels = drawn['arr_0'], drawn['arr_1']
    assert images.dtype == np.uint8 and images.shape == (9, 32, 32, 1)
    assert labels.tolist() == [1, 1, 1, 4, 4, 4, 7, 7, 7]
    assert images.std() > 0
    # The grid: a column per class, the first 2 samples of each; its pixels are the .npz's.
    picture = np.asarray(Image.open(grid))
    assert picture.shape == (2 * 32, 3 * 32)
    np.testing.assert_array_equal(picture[32:64, 64:96], images[7, ..., 0])
    assert not (tmp_path / 'out' / 'grid.partial').exists()
    assert '9/9' in proc.stdout  # the progress bar's last state


def test_bad_arguments_are_one_clear_line(tool, checkpoint, capsys):
    for argv, message in ((['--steps', '0'], '--steps must be >= 1, got 0'),
                          (['--per-class', '-1'], '--per-class must be >= 1'),
                          (['--out', 'grid.jpg'], 'the grid is a .png file'),
                          (['--eta', '0.5'], '(with --sampler ddim)'),
                          (['--guidance-scale', '-1'], '--guidance-scale must be >= 0')):
        with pytest.raises(SystemExit):
            tool.parse_args([CONFIG, str(checkpoint), *argv])
        assert message in capsys.readouterr().err.strip().splitlines()[-1]

    with pytest.raises(ValueError) as info:
        tool.check_classes([3, 10, -1], 10, CONFIG)
    assert str(info.value) == f'--classes [10, -1]: {CONFIG} draws classes 0..9'
    tool.check_classes([0, 9], 10, CONFIG)


def test_class_out_of_range_from_the_command_line(repo_root, checkpoint, tmp_path):
    proc = run_tool(repo_root, 'sample.py', CONFIG, str(checkpoint), '--out',
                    str(tmp_path / 'g.png'), '--classes', '2', '10', '--steps', '2')
    assert proc.returncode != 0
    assert last_line(proc) == f'ValueError: --classes [10]: {CONFIG} draws classes 0..9'
    assert not (tmp_path / 'g.npz').exists()


def test_unconditional_draws_the_null_class(repo_root, model, checkpoint, tmp_path, tool,
                                             capsys):
    null = model.denoiser.null_class_id
    proc = run_tool(repo_root, 'sample.py', CONFIG, str(checkpoint), '--out',
                    str(tmp_path / 'u.png'), '--unconditional', '--per-class', '3', '--steps', '2')
    assert proc.returncode == 0, proc.stderr[-3000:]
    drawn = np.load(tmp_path / 'u.npz')
    assert drawn['arr_0'].shape == (3, 32, 32, 1) and drawn['arr_1'].tolist() == [null] * 3
    for argv, message in ((['--classes', '1'], 'leave out --classes'),
                          (['--guidance-scale', '2'], '--unconditional draws none')):
        with pytest.raises(SystemExit):
            tool.parse_args([CONFIG, str(checkpoint), '--unconditional', *argv])
        assert message in capsys.readouterr().err.strip().splitlines()[-1]


class Interrupted(Exception):
    pass


class CountingModel:
    """The model, its sample_classes calls counted; it stops after ``stop_after`` calls."""

    def __init__(self, model, stop_after=None):
        self.model, self.stop_after, self.calls = model, stop_after, []

    def sample_classes(self, classes, per_class, num_steps, seed, batch_size, **sampling):
        if self.stop_after is not None and len(self.calls) == self.stop_after:
            raise Interrupted
        self.calls.append(list(classes))
        return self.model.sample_classes(classes, per_class, num_steps, seed, batch_size,
                                         **sampling)


def test_a_stopped_run_resumes_where_it_stopped(tool, model, tmp_path):
    labels = torch.tensor([0, 0, 3, 3, 5, 5, 8])
    identity = dict(run='test', steps=2)

    reference = tool.draw_samples(CountingModel(model), labels, 1, 0, 3,
                                  tool.PartialSamples(str(tmp_path / 'reference'), identity))

    folder = str(tmp_path / 'resumed')
    first = CountingModel(model, stop_after=2)
    with pytest.raises(Interrupted):
        tool.draw_samples(first, labels, 1, 0, 3, tool.PartialSamples(folder, identity))
    assert first.calls == [[0, 0, 3], [3, 5, 5]]
    second = CountingModel(model)
    images, drawn = tool.draw_samples(second, labels, 1, 0, 3,
                                      tool.PartialSamples(folder, identity))
    assert second.calls == [[8]]  # only the chunk that was not finished
    np.testing.assert_array_equal(images, reference[0])
    np.testing.assert_array_equal(drawn, labels.numpy())

    with pytest.raises(ValueError, match=r"another run \(different \['steps'\]\)"):
        tool.PartialSamples(folder, dict(run='test', steps=3))


def test_guidance_and_ddim_reach_the_model(repo_root, checkpoint, tmp_path):
    """Guided samples differ from unguided ones drawn with the same seed; this stage-2 model's
    semantic adjustment refuses DDIM in one line."""
    common = ('--per-class', '2', '--steps', '3', '--classes', '3', '--batch-size', '2')
    proc = run_tool(repo_root, 'sample.py', CONFIG, str(checkpoint), '--out',
                    str(tmp_path / 'ddim.png'), *common, '--sampler', 'ddim')
    assert proc.returncode != 0
    assert "sampler='ddim' cannot apply this model's semantic adjustment" in last_line(proc)
    runs = {}
    for name, extra in (('plain', ()), ('guided', ('--guidance-scale', '3'))):
        proc = run_tool(repo_root, 'sample.py', CONFIG, str(checkpoint), '--out',
                        str(tmp_path / f'{name}.png'), *common, *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = np.load(tmp_path / f'{name}.npz')['arr_0']
    assert runs['plain'].shape == runs['guided'].shape
    assert np.abs(runs['plain'].astype(int) - runs['guided'].astype(int)).max() > 0


def test_processes_split_the_chunks(tool, model, tmp_path):
    """Process r of W draws chunks r, r + W, ...; the chunks together are one process's."""
    labels = torch.tensor([0, 0, 3, 3, 5, 5, 8])
    identity = dict(run='split')
    one = tool.draw_samples(model, labels, 1, 0, 2,
                            tool.PartialSamples(str(tmp_path / 'one'), identity))
    folder = str(tmp_path / 'two')
    calls = {}
    for rank in (1, 0):
        counting = CountingModel(model)
        tool.draw_own_chunks(counting, labels, 1, 0, 2, tool.PartialSamples(folder, identity),
                             rank, 2)
        calls[rank] = counting.calls
    assert calls == {0: [[0, 0], [5, 5]], 1: [[3, 3], [8]]}
    two = tool.collect_chunks(tool.PartialSamples(folder, identity), 4)
    np.testing.assert_array_equal(two[0], one[0])
    np.testing.assert_array_equal(two[1], one[1])


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_dist_sample(repo_root, checkpoint, out, processes, *args):
    import os
    import subprocess
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1')
    return subprocess.run(['bash', 'tools/dist_sample.sh', CONFIG, str(checkpoint),
                           str(processes), '--out', str(out), *args], cwd=repo_root,
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_dist_sample_two_processes_equal_one_and_resume(repo_root, checkpoint, tmp_path):
    """tools/dist_sample.sh with 2 CPU processes (gloo) writes the .npz of 1 process; a run killed
    after its first chunks is finished by a 2-process rerun that draws only the rest."""
    import signal
    import subprocess
    import sys
    import time
    common = ('--per-class', '2', '--steps', '3', '--classes', '1', '4', '7', '--batch-size',
              '2', '--grid-rows', '1')
    one = run_tool(repo_root, 'sample.py', CONFIG, str(checkpoint), '--out',
                   str(tmp_path / 'one.png'), *common)
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_dist_sample(repo_root, checkpoint, tmp_path / 'two.png', 2, *common)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "'gloo' backend" in two.stderr and '2 process(es)' in two.stdout
    reference, drawn = np.load(tmp_path / 'one.npz'), np.load(tmp_path / 'two.npz')
    assert sorted(drawn.files) == ['arr_0', 'arr_1']
    assert drawn['arr_0'].dtype == np.uint8 and drawn['arr_0'].shape == (6, 32, 32, 1)
    np.testing.assert_array_equal(drawn['arr_0'], reference['arr_0'])
    np.testing.assert_array_equal(drawn['arr_1'], [1, 1, 4, 4, 7, 7])
    assert (tmp_path / 'two.png').is_file() and not (tmp_path / 'two.partial').exists()

    # A 1-process run of many slow chunks, killed once its first chunk is written.
    slow = ('--per-class', '4', '--steps', '200', '--classes', '1', '4', '7', '--batch-size',
            '1', '--grid-rows', '1')
    out = tmp_path / 'killed.png'
    proc = subprocess.Popen([sys.executable, 'tools/sample.py', CONFIG, str(checkpoint),
                             '--out', str(out), *slow], cwd=repo_root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / 'killed.partial'
    deadline = time.time() + 300
    while not list(partial.glob('chunk_*[0-9].npz')) and time.time() < deadline:
        assert proc.poll() is None, 'the run ended before it was killed'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(partial.glob('chunk_*[0-9].npz')))
    assert 1 <= done < 12, done
    resumed = run_dist_sample(repo_root, checkpoint, out, 2, *slow)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    found = int(resumed.stdout.split(' of 12 chunks resumed')[0].rsplit(' ', 1)[-1])
    assert found >= done
    whole = run_tool(repo_root, 'sample.py', CONFIG, str(checkpoint), '--out',
                     str(tmp_path / 'whole.png'), *slow)
    assert whole.returncode == 0, whole.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / 'killed.npz')['arr_0'],
                                  np.load(tmp_path / 'whole.npz')['arr_0'])

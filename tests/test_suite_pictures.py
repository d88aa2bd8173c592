"""The pictures of tools/benchmark_suite.py: each job's drawn result copied under the docs from its
newest run, enlarged pixel for pixel when tiny, scaled down until under the size limit; the
repository's job table names a picture for each task the README shows."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, load_tool


@pytest.fixture(scope='module')
def suite():
    return load_tool('tools/benchmark_suite.py')


def test_a_tiny_picture_is_enlarged_pixel_for_pixel(suite, tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (28, 20), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / 'tiny.png')
    size = suite.save_picture(str(tmp_path / 'tiny.png'), str(tmp_path / 'out' / 'big.png'))
    factor = -(-suite.PICTURE_MIN_SIDE // 28)  # the smallest whole factor reaching it
    assert size == (20 * factor, 28 * factor)
    big = np.asarray(Image.open(tmp_path / 'out' / 'big.png'))
    assert big.shape == (28 * factor, 20 * factor, 3)
    assert np.array_equal(big[::factor, ::factor, 0], pixels)
    assert np.array_equal(big[factor - 1::factor, factor - 1::factor, 2], pixels)


def test_a_large_noisy_picture_is_scaled_down_under_the_limit(suite, tmp_path):
    noise = np.random.default_rng(1).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / 'noise.png')
    assert osp.getsize(tmp_path / 'noise.png') > 4 * suite.PICTURE_BYTES
    width, height = suite.save_picture(str(tmp_path / 'noise.png'), str(tmp_path / 'small.png'))
    assert osp.getsize(tmp_path / 'small.png') < suite.PICTURE_BYTES
    assert width <= suite.PICTURE_MAX_SIDE and abs(width / height - 2000 / 1500) < 0.01
    # Noise compresses to ~3 bytes a pixel: 1024 x 768 is too large, so it took more steps.
    assert width < suite.PICTURE_MAX_SIDE


def test_the_source_is_the_newest_runs_first_file(suite, tmp_path):
    old, new = tmp_path / 'run1', tmp_path / 'run2'
    for folder, names in ((old, ['a.png', 'b.png']), (new, ['d.png', 'c.png'])):
        folder.mkdir()
        for name in names:
            Image.new('L', (4, 4)).save(folder / name)
    os.utime(old / 'a.png', (1, 1))
    os.utime(old / 'b.png', (2, 2))
    assert suite.picture_source(str(tmp_path / '*' / '*.png')) == str(new / 'c.png')
    assert suite.picture_source(str(tmp_path / 'none' / '*.png')) is None


def test_the_suite_writes_a_jobs_pictures_and_names_a_missing_one(suite, tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.chdir(tmp_path)
    script = ('import json, os; from PIL import Image; '
              'os.makedirs("work_dirs/j/test/t/vis", exist_ok=True); '
              'Image.new("RGB", (600, 400), (0, 128, 255)).save("work_dirs/j/test/t/vis/x.png"); '
              'json.dump({"accuracy/top1": 50.0}, open("work_dirs/j/test/t/t.json", "w"))')
    jobs = dict(j=dict(family='tiny', task='Image Classification', dataset='Fashion-MNIST',
                       config=osp.join(REPO_ROOT, 'tests', 'data', 'configs', 'fmnist_tiny.py'),
                       commands=[f"{sys.executable} -c '{script}'"],
                       results='work_dirs/j/test/*/*.json', metrics={'accuracy/top1': 'Top 1'},
                       pictures=dict(j_overlay='work_dirs/j/test/*/vis/*.png',
                                     j_missing='work_dirs/j/nowhere/*.png')))
    (tmp_path / 'jobs.py').write_text(f'jobs = {jobs!r}\n')
    argv = ['--jobs', 'jobs.py', '--out-dir', 'suite', '--reference', '',
            '--pictures-dir', 'pics']
    assert suite.main(argv) == 0
    written = np.asarray(Image.open(tmp_path / 'pics' / 'j_overlay.png'))
    assert written.shape == (400, 600, 3) and (written == (0, 128, 255)).all()
    assert not (tmp_path / 'pics' / 'j_missing.png').exists()
    printed = capsys.readouterr().out
    assert 'picture j_missing: nothing matches work_dirs/j/nowhere/*.png' in printed
    # A current job is not re-run, but its pictures are written again (a release redraws them).
    os.remove(tmp_path / 'pics' / 'j_overlay.png')
    assert suite.main(argv) == 0
    assert (tmp_path / 'pics' / 'j_overlay.png').exists()

    jobs['j']['pictures'] = ['work_dirs/j/test/*/vis/*.png']
    (tmp_path / 'jobs.py').write_text(f'jobs = {jobs!r}\n')
    with pytest.raises(ValueError, match='jobs.j.pictures must map names to globs'):
        suite.main(argv)


def test_the_job_table_draws_the_pictures_the_readme_shows(suite):
    table = suite.load_jobs(osp.join(REPO_ROOT, 'benchmarks', 'suite_jobs.py'))
    pictures = {name for job in table.values() for name in job.get('pictures', {})}
    assert {'main_samples', 'main_reliability', 'seg_overlay', 'ovdet_boxes', 'depth_map',
            'ood_shift_examples'} <= pictures


def test_the_overview_puts_the_existing_pictures_side_by_side_at_one_height(suite, tmp_path):
    assert suite.compose_overview(str(tmp_path)) is None
    Image.new('RGB', (512, 512), (255, 0, 0)).save(tmp_path / 'main_samples.png')
    Image.new('RGB', (200, 100), (0, 0, 255)).save(tmp_path / 'depth_map.png')
    path = suite.compose_overview(str(tmp_path))
    overview = np.asarray(Image.open(path))
    height = suite.OVERVIEW_HEIGHT
    assert overview.shape == (height, height + 8 + 2 * height, 3)
    assert (overview[:, :height] == (255, 0, 0)).all()
    assert (overview[:, height:height + 8] == 255).all()
    assert (overview[:, height + 8:] == (0, 0, 255)).all()
    assert sorted(os.listdir(tmp_path)) == ['depth_map.png', 'main_samples.png', 'overview.png']


def test_every_committed_picture_is_small_and_shown_by_a_page(suite):
    folder = osp.join(REPO_ROOT, 'docs', '_static', 'results')
    names = sorted(os.listdir(folder)) if osp.isdir(folder) else []
    pages = [osp.join(REPO_ROOT, 'README.md')] + [
        osp.join(REPO_ROOT, 'docs', name) for name in os.listdir(osp.join(REPO_ROOT, 'docs'))
        if name.endswith('.md')]
    text = ''.join(open(page).read() for page in pages)
    for name in names:
        assert name.endswith('.png'), name
        assert osp.getsize(osp.join(folder, name)) < suite.PICTURE_BYTES, name
        assert f'_static/results/{name}' in text, f'{name} is shown by no page'

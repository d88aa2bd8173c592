"""tools/benchmark_suite.py on a two-job table: runs the jobs, writes the results table (markdown
and JSON), skips current results and re-runs a job whose code, config bases or installed versions
changed, flags an injected regression beyond the tolerance, and writes metafiles that the
model-index package validates."""
import json
import os.path as osp
import sys

import modelindex  # the model-index package (requirements/tests.txt)
import pytest
import yaml

from conftest import REPO_ROOT, load_tool

TINY = osp.join(REPO_ROOT, 'tests', 'data', 'configs')


def result_command(job, values):
    """A shell command that counts its runs and writes a tools/test.py-style result JSON."""
    script = (f'import json, os; os.makedirs("work_dirs/{job}/test/t", exist_ok=True); '
              f'open("runs.txt", "a").write("{job}\\n"); '
              f'json.dump({json.dumps(values)}, open("work_dirs/{job}/test/t/t.json", "w"))')
    return f"{sys.executable} -c '{script}'"


def write_table(path, top1_b=70.0):
    jobs = dict(
        cls_a=dict(family='tiny_cls', task='Image Classification', dataset='Fashion-MNIST',
                   config=osp.join(TINY, 'fmnist_tiny.py'),
                   commands=[result_command('cls_a', {'accuracy/top1': 80.0})],
                   results='work_dirs/cls_a/test/*/*.json',
                   metrics={'accuracy/top1': 'Top 1 Accuracy'}),
        cls_b=dict(family='tiny_genrep', task='Image Classification', dataset='Fashion-MNIST',
                   config=osp.join(TINY, 'fmnist_genrep_tiny_stage1.py'),
                   commands=[result_command('cls_b', {'accuracy/top1': top1_b,
                                                      'calibration/ece': 0.05})],
                   results='work_dirs/cls_b/test/*/*.json',
                   metrics={'accuracy/top1': 'Top 1 Accuracy', 'calibration/ece': 'ECE'},
                   lower_is_better=['calibration/ece']))
    with open(path, 'w') as f:
        f.write(f'jobs = {jobs!r}\n')


def runs(tmp_path):
    return open(tmp_path / 'runs.txt').read().split()


def test_suite_table_skips_current_results_and_flags_a_regression(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    suite = load_tool('tools/benchmark_suite.py')
    write_table('jobs.py')
    argv = ['--jobs', 'jobs.py', '--out-dir', 'suite', '--reference', 'ref.json']

    assert suite.main(argv + ['--update-reference']) == 0
    assert runs(tmp_path) == ['cls_a', 'cls_b']
    printed = capsys.readouterr().out
    assert '[1/2] cls_a: running' in printed and '[2/2] cls_b: Top 1 Accuracy 70.00' in printed
    results = json.load(open('suite/results.json'))['jobs']
    assert results['cls_b']['metrics'] == {'accuracy/top1': 70.0, 'calibration/ece': 0.05}
    assert results['cls_a']['wall_time_s'] > 0 and results['cls_a']['status'] == 'ran'
    table = open('suite/results.md').read().splitlines()
    assert len([line for line in table if line.startswith('| cls_')]) == 2
    assert json.load(open('ref.json'))['jobs']['cls_a']['metrics'] == {'accuracy/top1': 80.0}

    # Current results are not re-run.
    assert suite.main(argv) == 0
    assert runs(tmp_path) == ['cls_a', 'cls_b']
    assert json.load(open('suite/results.json'))['jobs']['cls_b']['status'].startswith('current')

    # A drop of 10 points of 70 (14% > 2%) is a regression; the unchanged job is not.
    write_table('jobs.py', top1_b=60.0)
    assert suite.main(argv + ['--force']) == 1
    assert runs(tmp_path) == ['cls_a', 'cls_b'] * 2
    results = json.load(open('suite/results.json'))['jobs']
    assert results['cls_b']['changes']['accuracy/top1'] == dict(change=-10.0, regressed=True)
    assert results['cls_b']['changes']['calibration/ece'] == dict(change=0.0, regressed=False)
    assert results['cls_b']['status'] == 'ran, REGRESSION'
    assert results['cls_a']['changes']['accuracy/top1']['regressed'] is False
    assert 'Top 1 Accuracy -10 **REGRESSION**' in open('suite/results.md').read()
    # Within the tolerance: 60 -> 59.5 is under 1% of 60.
    assert suite.regressions(dict(), {'m': 59.5}, {'m': 60.0}, 1.0)['m']['regressed'] is False
    assert suite.regressions(dict(lower_is_better=['m']), {'m': 0.06}, {'m': 0.05},
                             2.0)['m']['regressed'] is True


def test_partial_runs_accumulate_one_table_with_each_jobs_wall_time(tmp_path, monkeypatch):
    """Two runs of part of the table (--only, e.g. beside each other): the table holds both jobs,
    and a later run that finds them current reports what running them cost (each job's record),
    even after results.json lost a row."""
    monkeypatch.chdir(tmp_path)
    suite = load_tool('tools/benchmark_suite.py')
    write_table('jobs.py')
    argv = ['--jobs', 'jobs.py', '--out-dir', 'suite', '--reference', 'none']
    assert suite.main(argv + ['--only', 'cls_a']) == 0
    assert suite.main(argv + ['--only', 'cls_b']) == 0
    results = json.load(open('suite/results.json'))['jobs']
    assert list(results) == ['cls_a', 'cls_b'] and results['cls_a']['status'] == 'ran'
    walls = {name: row['wall_time_s'] for name, row in results.items()}
    assert all(wall > 0 for wall in walls.values())
    assert len([line for line in open('suite/results.md') if line.startswith('| cls_')]) == 2

    # A results.json without cls_a's row (an older runner's partial write): the record keeps it.
    json.dump(dict(jobs={'cls_b': results['cls_b']}), open('suite/results.json', 'w'))
    assert suite.main(argv) == 0
    assert runs(tmp_path) == ['cls_a', 'cls_b']  # nothing re-run
    results = json.load(open('suite/results.json'))['jobs']
    assert {name: row['wall_time_s'] for name, row in results.items()} == walls
    assert all(row['status'].startswith('current') for row in results.values())


def test_metafiles_validate_with_model_index(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = load_tool('tools/benchmark_suite.py')
    write_table('jobs.py')
    assert suite.main(['--jobs', 'jobs.py', '--out-dir', 'suite', '--reference', 'none']) == 0
    index = modelindex.load('model-index.yml')
    assert index.check(silent=True) == []
    assert yaml.safe_load(open('model-index.yml'))['Import'] == [
        'configs/genrep/metafiles/tiny_cls/metafile.yaml',
        'configs/genrep/metafiles/tiny_genrep/metafile.yaml']
    models = {model.name: model for model in index.models}
    assert sorted(models) == ['cls_a', 'cls_b']
    b = models['cls_b']
    assert b.in_collection == 'tiny_genrep' and b.config.endswith('fmnist_genrep_tiny_stage1.py')
    assert b.results[0].task == 'Image Classification'
    assert b.results[0].metrics == {'Top 1 Accuracy': 70.0, 'ECE': 0.05}
    metadata = b.metadata.data
    wall = json.load(open('suite/results.json'))['jobs']['cls_b']['wall_time_s']
    assert metadata['Run Time (s)'] == round(wall, 1) and 'MMEngine' in metadata['Environment']

    # Running one job keeps the other family's file and the index whole.
    assert suite.main(['--jobs', 'jobs.py', '--out-dir', 'suite', '--reference', 'none',
                       '--only', 'cls_a', '--force']) == 0
    assert sorted(m.name for m in modelindex.load('model-index.yml').models) == ['cls_a', 'cls_b']


def test_the_repositorys_model_index_validates_and_matches_the_job_table():
    """The committed model-index.yml (written by the last full suite run): it validates, and each
    entry names a config that exists and carries the metrics of its job in the suite's table
    and the stored reference."""
    index = modelindex.load(osp.join(REPO_ROOT, 'model-index.yml'))
    assert index.check(silent=True) == []
    jobs = load_tool('tools/benchmark_suite.py').load_jobs(osp.join(REPO_ROOT, 'benchmarks', 'suite_jobs.py'))
    reference = json.load(open(osp.join(REPO_ROOT, 'benchmarks', 'suite_reference.json')))['jobs']
    models = {model.name: model for model in index.models}
    assert sorted(models) == sorted(jobs) == sorted(reference)
    for name, model in models.items():
        assert osp.isfile(osp.join(REPO_ROOT, model.config)), model.config
        assert model.config == jobs[name]['config']
        stored = {jobs[name]['metrics'][key]: value
                  for key, value in reference[name]['metrics'].items() if value is not None}
        assert model.results[0].metrics == pytest.approx(stored, rel=1e-3, abs=1e-4), name


@pytest.mark.slow
def test_suite_on_two_tiny_configs_trained_and_tested_by_the_tools(tmp_path, monkeypatch):
    """Two real jobs (tools/train.py 2 iterations + tools/test.py on 8 Fashion-MNIST-like
    images): the table holds their top-1; a stored figure 10 points above the measured one is
    flagged on the next (skipping) run."""
    from data_fixtures import write_fashion_mnist
    monkeypatch.chdir(tmp_path)
    data = write_fashion_mnist(tmp_path / 'data', num_train=8, num_test=8)
    options = ' '.join(f'{loader}.dataset.data_root={data}' for loader in
                       ('train_dataloader', 'val_dataloader', 'test_dataloader'))
    jobs = {}
    for name, config in (('tiny_cls', 'fmnist_tiny.py'),
                         ('tiny_genrep', 'fmnist_genrep_tiny_stage1.py')):
        config = osp.join(TINY, config)
        tool = f'{sys.executable} {osp.join(REPO_ROOT, "tools")}'
        jobs[name] = dict(
            family=name, task='Image Classification', dataset='Fashion-MNIST', config=config,
            commands=[f'{tool}/train.py {config} --work-dir work_dirs/{name} '
                      f'--cfg-options {options}',
                      f'{tool}/test.py {config} work_dirs/{name}/epoch_1.pth '
                      f'--work-dir work_dirs/{name}/test --cfg-options {options}'],
            results=f'work_dirs/{name}/test/*/*.json',
            metrics={'accuracy/top1': 'Top 1 Accuracy'},
            log=f'work_dirs/{name}/*/*.log', weights=f'work_dirs/{name}/epoch_1.pth')
    with open('jobs.py', 'w') as f:
        f.write(f'jobs = {jobs!r}\n')
    suite = load_tool('tools/benchmark_suite.py')
    argv = ['--jobs', 'jobs.py', '--out-dir', 'suite', '--reference', 'ref.json']
    assert suite.main(argv + ['--update-reference']) == 0, open('suite/logs/tiny_cls.log').read()
    results = json.load(open('suite/results.json'))['jobs']
    for name in jobs:
        top1 = results[name]['metrics']['accuracy/top1']
        test_json = json.load(open(suite.newest(f'work_dirs/{name}/test/*/*.json')))
        assert top1 == test_json['accuracy/top1']
    reference = json.load(open('ref.json'))
    reference['jobs']['tiny_genrep']['metrics']['accuracy/top1'] += 10
    json.dump(reference, open('ref.json', 'w'))
    assert suite.main(argv) == 1
    results = json.load(open('suite/results.json'))['jobs']
    assert results['tiny_genrep']['status'] == 'current (not re-run), REGRESSION'
    assert results['tiny_cls']['status'] == 'current (not re-run)'
    index = modelindex.load('model-index.yml')
    assert index.check(silent=True) == []
    assert {m.name: m.weights for m in index.models} == {
        name: f'work_dirs/{name}/epoch_1.pth' for name in jobs}


def test_jobs_of_one_command_run_it_once_and_a_failed_record_is_not_their_cost(tmp_path,
                                                                                monkeypatch):
    """Two jobs whose results one command writes (a GenRep chain's stages, one make target): the
    command runs once a suite run, even under --force, its wall time is the first job's, and the
    second job's row says whose command made it, with no wall time of its own. A failed run's
    record (a runner stopped on the way, whose job a later run finished) is not reported as what
    a current job cost."""
    monkeypatch.chdir(tmp_path)
    suite = load_tool('tools/benchmark_suite.py')
    both = (result_command('cls_a', {'accuracy/top1': 80.0}) + ' && ' +
            result_command('cls_b', {'accuracy/top1': 70.0, 'calibration/ece': 0.05}))
    write_table('jobs.py')
    table = {}
    exec(open('jobs.py').read(), table)
    for job in table['jobs'].values():
        job['commands'] = [both]
    with open('jobs.py', 'w') as f:
        f.write(f'jobs = {table["jobs"]!r}\n')
    argv = ['--jobs', 'jobs.py', '--out-dir', 'suite', '--reference', 'none']
    made_by = "current (made by cls_a's command)"
    for extra in ([], ['--force'], []):
        assert suite.main(argv + extra) == 0
        results = json.load(open('suite/results.json'))['jobs']
        assert results['cls_b']['status'] == made_by and results['cls_b']['wall_time_s'] is None
        assert results['cls_a']['wall_time_s'] > 0
    assert results['cls_a']['status'] == 'current (not re-run)'  # the third run: nothing ran
    assert runs(tmp_path) == ['cls_a', 'cls_b'] * 2  # once in each of the first two runs

    # cls_a's record from a stopped runner, and a results.json row that copies it: the result is
    # not one the suite is sure it made, so the command runs again and its cost is the new run's.
    suite.write_record('suite', 'cls_a', 0.3, 'FAILED (exit -9, see logs/cls_a.log)')
    results['cls_a'].update(wall_time_s=0.3, status='FAILED (exit -9)')
    json.dump(dict(jobs=results), open('suite/results.json', 'w'))
    assert suite.main(argv) == 0
    results = json.load(open('suite/results.json'))['jobs']
    assert results['cls_a']['status'] == 'ran' and results['cls_a']['wall_time_s'] != 0.3
    assert runs(tmp_path) == ['cls_a', 'cls_b'] * 3


def test_a_change_of_code_config_base_or_versions_reruns_the_job(tmp_path, monkeypatch, capsys):
    """The currency key: a change to the code the jobs run (a file of ``CODE_DIRS``), to a config's
    ``_base_`` file or to an installed version re-runs the job and says why; an unchanged tree
    re-runs nothing; a result file rewritten outside the suite is not current."""
    monkeypatch.chdir(tmp_path)
    suite = load_tool('tools/benchmark_suite.py')
    code = tmp_path / 'pkg'
    code.mkdir()
    (code / 'model.py').write_text('SCALE = 1.0\n')
    monkeypatch.setattr(suite, 'CODE_DIRS', [str(code)])
    (tmp_path / 'base.py').write_text('lr = 0.1\n')
    (tmp_path / 'job.py').write_text("_base_ = ['base.py']\nmodel = dict(type='M')\n")
    jobs = dict(job=dict(family='f', task='Image Classification', dataset='d',
                         config=str(tmp_path / 'job.py'),
                         commands=[result_command('job', {'accuracy/top1': 80.0})],
                         results='work_dirs/job/test/*/*.json',
                         metrics={'accuracy/top1': 'Top 1 Accuracy'}))
    with open('jobs.py', 'w') as f:
        f.write(f'jobs = {jobs!r}\n')
    argv = ['--jobs', 'jobs.py', '--out-dir', 'suite', '--reference', 'none']

    def run_suite():
        capsys.readouterr()
        assert suite.main(argv) == 0
        return json.load(open('suite/results.json'))['jobs']['job']['status'], \
            capsys.readouterr().out

    assert run_suite()[0] == 'ran' and runs(tmp_path) == ['job']
    assert run_suite()[0] == 'current (not re-run)' and runs(tmp_path) == ['job']

    (code / 'model.py').write_text('SCALE = 2.0\n')  # the injected code change
    status, printed = run_suite()
    assert status == 'ran' and runs(tmp_path) == ['job'] * 2
    assert 'running (code)' in printed
    assert run_suite()[0] == 'current (not re-run)' and runs(tmp_path) == ['job'] * 2

    (tmp_path / 'base.py').write_text('lr = 0.2\n')
    status, printed = run_suite()
    assert status == 'ran' and 'running (config)' in printed and len(runs(tmp_path)) == 3

    versions = suite.installed_versions()
    monkeypatch.setattr(suite, 'installed_versions', lambda: dict(versions, torch='0.0.1'))
    status, printed = run_suite()
    assert status == 'ran' and f"running (torch {versions['torch']} -> 0.0.1)" in printed
    assert len(runs(tmp_path)) == 4

    result = suite.newest('work_dirs/job/test/*/*.json')
    json.dump({'accuracy/top1': 99.0}, open(result, 'w'))  # written by hand, not by the suite
    status, printed = run_suite()
    assert status == 'ran' and 'not the one the suite made' in printed
    assert len(runs(tmp_path)) == 5

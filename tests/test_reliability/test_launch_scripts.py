"""tools/slurm_train.sh and tools/dist_train.sh on preemption (exit code 75 of tools/train.py),
with stand-ins for srun, scontrol and the Python interpreter (no cluster here): the scripts' own
logic, run by bash as on a cluster. The real training processes under tools/dist_train.sh are in
test_chaos.py (slow)."""
import os
import signal
import stat
import subprocess
import time

import pytest
from conftest import REPO_ROOT


def executable(path, text):
    path.write_text('#!/usr/bin/env bash\n' + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def cluster(tmp_path):
    """A bin/ with srun (drops its options, runs the command), scontrol (records its
    arguments) and a Python stand-in whose exit codes are read, one a call, from codes.txt."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    executable(bin_dir / 'srun', 'echo "srun $*" >> "$CALLS"\n'
               'while [[ $1 == -* ]]; do shift; done\nexec "$@"\n')
    executable(bin_dir / 'scontrol', 'echo "scontrol $*" >> "$CALLS"\n')
    python = executable(bin_dir / 'fake_python', (
        'echo "python $*" >> "$CALLS"\n'
        'code=$(head -n 1 "$CODES"); sed -i 1d "$CODES"\n'
        'exit ${code:-0}\n'))
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', PYTHON=str(python),
               CALLS=str(tmp_path / 'calls.txt'), CODES=str(tmp_path / 'codes.txt'))
    for key in ('SLURM_JOB_ID', 'SLURM_RESTART_COUNT'):
        env.pop(key, None)
    return tmp_path, env


def slurm_train(cluster, codes, **env):
    tmp_path, base_env = cluster
    (tmp_path / 'codes.txt').write_text(''.join(f'{c}\n' for c in codes))
    proc = subprocess.run(['bash', 'tools/slurm_train.sh', 'part', 'job', 'cfg.py', '--amp'],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(base_env, **env))
    return proc.returncode, (tmp_path / 'calls.txt').read_text().splitlines()


def python_calls(calls):
    return [c.split(' ', 1)[1] for c in calls if c.startswith('python ')]


def test_slurm_direct_run_resumes_after_a_preemption(cluster):
    code, calls = slurm_train(cluster, [75, 0])
    assert code == 0
    runs = python_calls(calls)
    assert len(runs) == 2
    assert runs[0].endswith('tools/train.py cfg.py --launcher=slurm --amp')
    assert runs[1].endswith('tools/train.py cfg.py --launcher=slurm --amp --resume')
    assert '--signal=USR1@120' in calls[0] and '--partition=part' in calls[0]


def test_slurm_direct_run_stops_resuming_after_max_requeues(cluster):
    code, calls = slurm_train(cluster, [75] * 5, MAX_REQUEUES='2')
    assert code == 75 and len(python_calls(calls)) == 3


def test_slurm_other_failures_are_not_retried(cluster):
    code, calls = slurm_train(cluster, [1, 0])
    assert code == 1 and len(python_calls(calls)) == 1


def test_slurm_batch_job_is_requeued_and_its_restart_resumes(cluster):
    code, calls = slurm_train(cluster, [75], SLURM_JOB_ID='4242')
    assert code == 75
    assert 'scontrol requeue 4242' in calls and len(python_calls(calls)) == 1
    assert not python_calls(calls)[0].endswith('--resume')
    (cluster[0] / 'calls.txt').unlink()
    code, calls = slurm_train(cluster, [0], SLURM_JOB_ID='4242', SLURM_RESTART_COUNT='1')
    assert code == 0 and python_calls(calls)[0].endswith('--amp --resume')
    assert not [c for c in calls if c.startswith('scontrol')]


# tools/dist_train.sh: the stand-in for `python -m torch.distributed.run` starts one "training
# process" (a bash child that, on SIGTERM, creates the preemption marker and exits 75, as
# tools/train.py does) and, like torchrun, reports its failure as 1.
TORCHRUN = '''echo "python $*" >> "$CALLS"
bash -c 'trap "touch \\"$GENREP_PREEMPTION_MARKER\\"; exit 75" TERM; echo started > "$READY";
         for i in $(seq 600); do sleep 0.1; done' &
wait $!
[ $? -eq 0 ] || exit 1
'''


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGUSR1])
def test_dist_train_passes_the_signal_on_and_exits_75(cluster, signum):
    tmp_path, env = cluster
    executable(tmp_path / 'bin' / 'fake_python', TORCHRUN)
    env = dict(env, READY=str(tmp_path / 'ready'), TMPDIR=str(tmp_path))
    proc = subprocess.Popen(['bash', 'tools/dist_train.sh', 'cfg.py', '2', '--amp'],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not (tmp_path / 'ready').exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 75, err
    assert 'the training processes were preempted; exit 75' in err
    call = (tmp_path / 'calls.txt').read_text()
    assert '-m torch.distributed.run' in call and '--nproc_per_node=2' in call
    assert call.strip().endswith('cfg.py --launcher pytorch --amp')
    assert not list(tmp_path.glob('genrep_preempted.*'))  # the marker is removed


def test_dist_train_keeps_other_exit_codes(cluster):
    tmp_path, env = cluster
    executable(tmp_path / 'bin' / 'fake_python', 'exit 3\n')
    proc = subprocess.run(['bash', 'tools/dist_train.sh', 'cfg.py', '2'], cwd=REPO_ROOT,
                          env=dict(env, TMPDIR=str(tmp_path)), capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 3

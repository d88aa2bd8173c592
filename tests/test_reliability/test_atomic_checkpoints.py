"""Checkpoints cannot be half-written: a full disk during a save fails in one line naming the file
and leaves every earlier checkpoint byte-identical; a kill during a save leaves no file under a
checkpoint's name that does not read back; the next run removes the temporary file it left."""
import errno
import multiprocessing
import os
import signal
import time

import pytest
import torch
from mmengine.hooks import Hook
from toy_runner import make_runner

from genrep.engine import AtomicWriteError, write_atomically
from genrep.engine.atomic_files import partial_path
from genrep.engine.checkpoints import find_resumable_checkpoint, verify_checkpoint


def full_disk_after(monkeypatch, budget):
    """os.write accepts ``budget`` bytes in all, then fails as a full disk does (ENOSPC)."""
    real_write = os.write
    left = [budget]

    def write(fd, data):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data)[:left[0]])
        left[0] -= written
        return written

    monkeypatch.setattr(os, 'write', write)


def test_write_atomically_replaces_whole_files(tmp_path):
    path = tmp_path / 'file.bin'
    write_atomically(str(path), b'first')
    write_atomically(str(path), b'second, longer')
    assert path.read_bytes() == b'second, longer'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['file.bin']


def test_full_disk_keeps_the_old_file_and_names_the_path(tmp_path, monkeypatch):
    path = tmp_path / 'file.bin'
    write_atomically(str(path), b'old content')
    full_disk_after(monkeypatch, budget=3)
    with pytest.raises(AtomicWriteError) as error:
        write_atomically(str(path), b'new content that does not fit')
    message = str(error.value)
    assert message.startswith(f'cannot write {path}: No space left on device (the disk is full)')
    assert '\n' not in message and error.value.errno == errno.ENOSPC
    assert path.read_bytes() == b'old content'
    assert not os.path.exists(partial_path(str(path)))


class FullDiskAt(Hook):
    """Fills the disk before iteration ``number`` (1-based): every later write fails."""
    priority = 'HIGHEST'

    def __init__(self, number, fill):
        self.number = number
        self.fill = fill

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.number:
            self.fill()


def test_full_disk_during_training_fails_naming_the_checkpoint(tmp_path, monkeypatch):
    """The toy run saves iter_2, iter_4, epoch_1 (after 6), iter_8 ...; the disk fills during
    iteration 8 with a few bytes left: the save of iter_8.pth fails, naming it; the files written
    before are byte-identical, last_checkpoint still names epoch_1.pth and a resume finds it."""
    snapshot = {}

    def fill():
        snapshot.update({p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()})
        full_disk_after(monkeypatch, budget=1000)

    runner = make_runner(tmp_path, 'full_disk', custom_hooks=[FullDiskAt(8, fill)])
    with pytest.raises(AtomicWriteError) as error:
        runner.train()
    monkeypatch.undo()
    assert str(error.value).startswith(f'cannot write {tmp_path / "iter_8.pth"}: No space left')
    assert {n for n in snapshot if n.endswith('.pth')} == {'epoch_1.pth', 'iter_4.pth'}
    for name, content in snapshot.items():
        assert (tmp_path / name).read_bytes() == content, name
    assert not (tmp_path / 'iter_8.pth').exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.partial')]
    assert (tmp_path / 'last_checkpoint').read_text() == 'epoch_1.pth'
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')


def test_kept_checkpoint_is_removed_only_after_its_successor_is_written(tmp_path, monkeypatch):
    """max_keep_ckpts=1: mmengine removes epoch_1.pth before it writes epoch_2.pth; genrep's hook
    after. A full disk at the save of epoch_2.pth leaves epoch_1.pth to resume from."""
    hooks = dict(checkpoint=dict(type='genrep.CheckpointHook', interval=1, max_keep_ckpts=1))
    runner = make_runner(tmp_path, 'keep_one', hooks=hooks,
                         custom_hooks=[FullDiskAt(12, lambda: full_disk_after(monkeypatch, 100))])
    with pytest.raises(AtomicWriteError, match='epoch_2.pth'):
        runner.train()
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']
    verify_checkpoint(str(tmp_path / 'epoch_1.pth'))


def write_slowly_then_wait(path, data):
    """In a child process: write ``data`` atomically, 1 KiB a call with a pause, so that the
    parent kills it mid-write."""
    real_write = os.write

    def slow_write(fd, chunk):
        time.sleep(0.01)
        return real_write(fd, bytes(chunk)[:1024])

    os.write = slow_write
    write_atomically(path, data)


def test_kill_during_a_save_leaves_no_unreadable_checkpoint(tmp_path):
    """SIGKILL while a checkpoint is being written over an older one: the older one is still
    there, whole; the part written lies in a hidden .partial file, which no resume reads and
    which the next run's CheckpointHook removes (saying so)."""
    run = make_runner(tmp_path, 'kill_save_first', max_epochs=1)
    run.train()
    target = tmp_path / 'epoch_1.pth'
    before = target.read_bytes()
    checkpoint = torch.load(target, weights_only=True)
    checkpoint['padding'] = torch.zeros(256 * 1024)  # 1 MiB: several seconds at 1 KiB a write
    import io
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    child = multiprocessing.get_context('fork').Process(
        target=write_slowly_then_wait, args=(str(target), buffer.getvalue()))
    child.start()
    temporary = partial_path(str(target))
    deadline = time.time() + 60
    try:
        while not (os.path.exists(temporary) and os.path.getsize(temporary) > 16 * 1024):
            assert time.time() < deadline and child.is_alive()
            time.sleep(0.01)
    finally:  # never leave the child behind: pytest's exit would wait for it
        child.kill()  # SIGKILL
        child.join()
    assert child.exitcode == -signal.SIGKILL
    assert target.read_bytes() == before  # the old checkpoint, whole
    assert 16 * 1024 < os.path.getsize(temporary) < len(buffer.getvalue())
    assert find_resumable_checkpoint(str(tmp_path)) == str(target)

    resumed = make_runner(tmp_path, 'kill_save_resumed', max_epochs=2,
                          resume_from=str(target))
    resumed.train()
    assert not os.path.exists(temporary)
    log = open(os.path.join(resumed.log_dir, f'{resumed.timestamp}.log')).read()
    assert f'removed {temporary}, the temporary file of a checkpoint' in log

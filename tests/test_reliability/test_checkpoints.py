"""Checkpoint files a resume can trust: the relative ``last_checkpoint`` (and mmengine's absolute
one, also from a copied work dir), the fall-back past a damaged newest checkpoint, errors that name
the file, and CheckpointHook's arguments checked when it is built."""
import os
import shutil

import pytest
import torch
from mmengine.logging import MMLogger
from toy_runner import make_runner

from genrep.engine import CheckpointHook
from genrep.engine.checkpoints import (CheckpointError, find_resumable_checkpoint,
                                       read_last_checkpoint, resumable_checkpoints,
                                       verify_checkpoint)


@pytest.fixture(scope='module')
def trained_work_dir(tmp_path_factory):
    """The toy run's files: epoch_1/2.pth, iter_10.pth (the older iter_2/4/8.pth removed),
    last_checkpoint."""
    work_dir = tmp_path_factory.mktemp('ckpt') / 'work'
    make_runner(work_dir, 'checkpoints_whole').train()
    return work_dir


def copy_of(work_dir, tmp_path):
    copy = tmp_path / 'copy'
    shutil.copytree(work_dir, copy)
    return copy


def test_hook_writes_relative_last_checkpoint_and_keeps_one_iter_checkpoint(trained_work_dir):
    assert (trained_work_dir / 'last_checkpoint').read_text() == 'epoch_2.pth'
    names = sorted(p.name for p in trained_work_dir.glob('*.pth'))
    assert [n for n in names if n.startswith('iter_')] == ['iter_10.pth']
    assert {'epoch_1.pth', 'epoch_2.pth'} <= set(names)
    meta = torch.load(trained_work_dir / 'iter_10.pth', weights_only=True)['meta']
    assert meta['epoch'] == 1 and meta['iter'] == 10  # inside epoch 2: one epoch completed


def test_copied_work_dir_resumes_from_its_own_files(trained_work_dir, tmp_path):
    copy = copy_of(trained_work_dir, tmp_path)
    assert read_last_checkpoint(str(copy)) == str(copy / 'epoch_2.pth')
    # mmengine's absolute pointer into the original directory, which no longer exists:
    (copy / 'last_checkpoint').write_text('/gone/elsewhere/work/epoch_2.pth')
    assert read_last_checkpoint(str(copy)) == str(copy / 'epoch_2.pth')
    # an absolute pointer to a file that exists is kept as it is
    (copy / 'last_checkpoint').write_text(str(trained_work_dir / 'epoch_1.pth'))
    assert read_last_checkpoint(str(copy)) == str(trained_work_dir / 'epoch_1.pth')


def test_damaged_newest_checkpoint_falls_back_with_both_names(trained_work_dir, tmp_path):
    copy = copy_of(trained_work_dir, tmp_path)
    newest = copy / 'epoch_2.pth'
    newest.write_bytes(newest.read_bytes()[:-200])  # what a kill during torch.save leaves
    os.utime(copy / 'epoch_1.pth', (1, 1))  # iter_10.pth is the next newest by time
    assert resumable_checkpoints(str(copy))[0] == str(newest)
    logger = MMLogger.get_current_instance()
    messages = []
    logger.addFilter(lambda record: messages.append(record.getMessage()) or True)
    found = find_resumable_checkpoint(str(copy))
    assert found == str(copy / 'iter_10.pth')
    warning = next(m for m in messages if 'resuming from' in m)
    assert str(newest) in warning and str(copy / 'iter_10.pth') in warning, warning


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    (tmp_path / 'epoch_1.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='epoch_1.pth'):
        find_resumable_checkpoint(str(tmp_path))
    assert find_resumable_checkpoint(str(tmp_path / 'empty')) is None


@pytest.mark.parametrize('damage, reason', [
    (lambda data: data[:len(data) // 2], 'cannot be read'),
    (lambda data: data[:-300] + bytes(300), 'cannot be read'),
    (lambda data: b'', 'cannot be read'),
])
def test_damaged_checkpoint_error_names_the_file(trained_work_dir, tmp_path, damage, reason):
    path = tmp_path / 'model.pth'
    path.write_bytes(damage((trained_work_dir / 'epoch_1.pth').read_bytes()))
    with pytest.raises(CheckpointError, match=reason) as error:
        verify_checkpoint(str(path))
    assert str(path) in str(error.value)


def test_refused_pickle_error_names_the_file(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': os.getcwd}, path)  # a global outside the allowlist
    with pytest.raises(CheckpointError, match='UnpicklingError') as error:
        verify_checkpoint(str(path))
    assert str(path) in str(error.value)


def test_hook_refuses_unknown_keys_when_built():
    with pytest.raises(TypeError, match="'intervall'"):
        CheckpointHook(intervall=1)
    hook = CheckpointHook(2, False, iter_interval=3)  # mmengine's positional order
    assert hook.interval == 2 and hook.by_epoch is False and hook.iter_interval == 3

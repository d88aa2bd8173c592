"""Files that are either complete or absent: what a checkpoint must be when a kill or a full disk
interrupts its writing.

:func:`write_atomically` writes the bytes to a hidden temporary file beside the target
(``.<name>.partial``), flushes and fsyncs it, renames it onto the target (``os.replace``, atomic on
POSIX file systems) and fsyncs the directory, so that the rename itself survives a power loss. A
kill before the rename leaves the previous file of that name, or none, and a ``.partial`` file that
no resume reads (its name is hidden and matches no checkpoint pattern); a full disk removes the
``.partial`` file and raises :class:`AtomicWriteError`, one line naming the target.

:class:`AtomicLocalBackend` is mmengine's local file backend with :func:`write_atomically` as its
``put``: genrep's CheckpointHook hands it to mmengine's ``save_checkpoint`` through the public
``backend_args`` (``dict(backend='genrep_atomic_local')``), so nothing of mmengine is patched.
"""
import errno
import glob
import os
import os.path as osp
from typing import List, Union

from mmengine.fileio import LocalBackend, register_backend

PARTIAL_SUFFIX = '.partial'
ATOMIC_BACKEND = 'genrep_atomic_local'


class AtomicWriteError(OSError):
    """A file that could not be written; the message (one line) names it. ``errno`` is the
    operating system's (``errno.ENOSPC`` for a full disk)."""

    def __init__(self, message: str, error_number: int = 0):
        super().__init__(message)
        self.errno = error_number

    def __str__(self) -> str:
        return self.args[0]


def partial_path(path: str) -> str:
    """The temporary file :func:`write_atomically` writes before renaming it to ``path``."""
    folder, name = osp.split(path)
    return osp.join(folder, f'.{name}{PARTIAL_SUFFIX}')


def _fsync_directory(folder: str) -> None:
    fd = os.open(folder or '.', os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is atomic all the same
    finally:
        os.close(fd)


def write_atomically(path: str, data: Union[bytes, bytearray, memoryview]) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old content or all of ``data``.

    Raises:
        AtomicWriteError: the file cannot be written (e.g. the disk is full); the temporary file is
            removed and ``path`` is left as it was.
    """
    temporary = partial_path(path)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data).cast('B')
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as err:
        if osp.exists(temporary):
            os.remove(temporary)
        reason = err.strerror or str(err)
        hint = ' (the disk is full)' if err.errno in (errno.ENOSPC, errno.EDQUOT) else ''
        raise AtomicWriteError(
            f'cannot write {path}: {reason}{hint}; nothing was written under that name and the '
            'files written before are unchanged', err.errno or 0) from err
    _fsync_directory(osp.dirname(path))


def remove_partial_files(folder: str) -> List[str]:
    """Remove the temporary files that writes killed before their rename left in ``folder``; return
    their paths."""
    leftovers = sorted(glob.glob(osp.join(glob.escape(folder), f'.*{PARTIAL_SUFFIX}')))
    for path in leftovers:
        os.remove(path)
    return leftovers


@register_backend(ATOMIC_BACKEND, force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's LocalBackend whose writes (``put``, ``put_text``) are atomic
    (:func:`write_atomically`)."""

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        os.makedirs(osp.dirname(filepath) or '.', exist_ok=True)
        write_atomically(filepath, obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)

"""Data faults named where they happen: a missing or undecodable image or annotation fails at its
first load with one line naming the file and the dataset, or, where the config opts in
(``skip_faulty=True`` on the dataset), is skipped with a warning and counted.

Without this, a corrupt annotation PNG reaches mmseg's ``LoadAnnotations`` as ``None`` and fails
as ``'NoneType' object has no attribute 'squeeze'`` (no file named), a corrupt image fails as
mmcv's ``AssertionError`` naming the file but not the dataset, in a data worker, many iterations
into a run.

:class:`NamedDataFaults` is a mixin of genrep's datasets (mmengine ``BaseDataset`` subclasses):
when the pipeline raises for a sample, it checks the sample's files (the ``*_path`` entries of its
data info: missing, unreadable, or an image that does not decode) and, if one of them is at fault,
raises :class:`DataFaultError` naming it; an error that no file explains is re-raised unchanged
(a bug in a transform is not a data fault).
"""
import logging
import os.path as osp
from typing import Optional

import torch
from mmengine.logging import print_log

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


class DataFaultError(RuntimeError):
    """A sample whose file is missing or damaged; the message (one line) names the file and the
    dataset."""


def file_fault(path: str) -> Optional[str]:
    """Why ``path`` cannot be loaded (missing, unreadable, an image that does not decode), or None
    where it loads."""
    if not osp.exists(path):
        return 'it does not exist'
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as err:
        return f'it cannot be read ({err.strerror})'
    if not content:
        return 'it is empty'
    if path.lower().endswith(IMAGE_SUFFIXES):
        import mmcv
        try:
            decoded = mmcv.imfrombytes(content, flag='unchanged')
        except Exception as err:  # a decoder's own error on damaged bytes
            return f'it does not decode as an image ({type(err).__name__})'
        if decoded is None:
            return 'it does not decode as an image (damaged or truncated)'
    return None


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f'{type(err).__name__}: {text.splitlines()[0]}' if text else type(err).__name__


class NamedDataFaults:
    """Mixin for an mmengine ``BaseDataset`` subclass (put it first among the bases): a sample
    whose file is missing or damaged raises :class:`DataFaultError` naming the file and the
    dataset, or, with ``skip_faulty=True`` in training, is skipped and counted (mmengine's
    ``BaseDataset`` then draws another sample, as for a pipeline that returns None).

    Args:
        skip_faulty: keyword-only, default False. Skip faulty training samples (a warning each, the
            count in :attr:`faults_skipped`) instead of failing. Never in ``test_mode``: a
            metric over fewer samples is not the metric asked for.
        **kwargs: the dataset's own arguments.
    """

    def __init__(self, *args, skip_faulty: bool = False, **kwargs):
        self.skip_faulty = skip_faulty
        # In shared memory: the data workers, which do the loading, count into it (a skip is
        # rare, so two workers adding at once, which may lose one, is not worth a lock).
        self._faults_skipped = torch.zeros(1, dtype=torch.int64).share_memory_()
        super().__init__(*args, **kwargs)

    @property
    def faults_skipped(self) -> int:
        """How many faulty samples were skipped, in this process and its data workers."""
        return int(self._faults_skipped.item())

    def describe(self) -> str:
        """The dataset as a message names it: its class, root and annotation file."""
        where = [f'data_root={self.data_root!r}'] if getattr(self, 'data_root', None) else []
        if getattr(self, 'ann_file', None):
            where.append(f'ann_file={self.ann_file!r}')
        return f'{type(self).__name__}({", ".join(where)})'

    def prepare_data(self, idx):
        try:
            return super().prepare_data(idx)
        except Exception as err:
            info = self.get_data_info(idx)
            faults = [(key, path, file_fault(path)) for key, path in info.items()
                      if key.endswith('_path') and isinstance(path, str)]
            faults = [(key, path, why) for key, path, why in faults if why]
            if not faults:
                raise
            key, path, why = faults[0]
            message = (f'{self.describe()}: sample {idx}: {key} {path}: {why} '
                       f'({first_line(err)})')
            if self.skip_faulty and not self.test_mode:
                self._faults_skipped += 1
                count = self.faults_skipped
                print_log(f'skipped ({count} so far, skip_faulty=True): {message}',
                          logger='current', level=logging.WARNING)
                return None
            raise DataFaultError(message) from err

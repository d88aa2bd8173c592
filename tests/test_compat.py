"""Each fix in genrep.compat works, the breakage it fixes is real, and it is a no-op if not needed.

The "without the fix" cases run in a fresh interpreter that never imports genrep; they skip where
the environment does not show the breakage at all.
"""
import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from genrep import compat  # noqa: I001  (first: its fixes precede the imports below)
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_python(code):
    """Run ``code`` in a fresh interpreter at the repository root, where genrep is not imported."""
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


# torchvision ops on CPU-only torch

def test_torchvision_import_fails_without_fix():
    result = run_python('import torchvision')
    if result.returncode == 0:
        pytest.skip('torchvision imports without the fix in this environment')
    assert 'RuntimeError: operator torchvision::nms does not exist' in result.stderr


def test_torchvision_and_mmpretrain_import_with_fix():
    result = run_python("""
    import genrep
    import torch, torchvision, torchvision.ops
    import mmpretrain.models, mmpretrain.datasets
    if not torchvision.extension._has_ops():
        assert genrep.compat._torchvision_schema_library is not None
        try:
            torchvision.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
        except RuntimeError as error:
            assert "Couldn't load custom C++ ops" in str(error), error
        else:
            raise AssertionError('nms ran without torchvision ops')
    print('ok')
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'


def test_torchvision_fix_is_noop_when_not_needed(monkeypatch):
    import torchvision  # noqa: F401  (imports: genrep applied the fix, or torchvision needed none)
    library = compat._torchvision_schema_library
    assert compat.define_torchvision_nms_schemas() == 'already-imported'
    # Not imported yet, but its ops exist (here: defined or loaded when genrep was imported).
    monkeypatch.delitem(sys.modules, 'torchvision')
    assert compat.define_torchvision_nms_schemas() == 'ops-present'
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, package=None: None)
    assert compat.define_torchvision_nms_schemas() == 'absent'
    assert compat._torchvision_schema_library is library


# mmengine checkpoints under torch.load(weights_only=True)

class ToyRegressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            return {'loss': ((out - labels)**2).mean()}
        return out


class ToyDataset(torch.utils.data.Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return dict(inputs=torch.full((2, ), float(index)), labels=torch.tensor(float(index)))


def build_runner(work_dir, max_epochs, resume, name):
    return Runner(
        model=ToyRegressor(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(dataset=ToyDataset(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmengine')


@pytest.fixture(scope='module')
def mmengine_work_dir(tmp_path_factory):
    """A work dir holding the epoch_1/epoch_2 checkpoints a real mmengine Runner saved."""
    work_dir = tmp_path_factory.mktemp('mmengine_run')
    build_runner(work_dir, max_epochs=2, resume=False, name='compat_train').train()
    assert (work_dir / 'epoch_2.pth').is_file()
    return work_dir


def test_mmengine_checkpoint_load_fails_without_fix(mmengine_work_dir):
    # The call mmengine.runner.checkpoint.load_from_local makes when resuming.
    result = run_python(f"""
    import torch
    torch.load({str(mmengine_work_dir / 'epoch_2.pth')!r}, map_location='cpu')
    """)
    if result.returncode == 0:
        pytest.skip('this torch loads mmengine checkpoints without the fix')
    assert 'UnpicklingError' in result.stderr
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in result.stderr


def test_mmengine_resume_with_fix(mmengine_work_dir):
    runner = build_runner(mmengine_work_dir, max_epochs=3, resume=True, name='compat_resume')
    runner.train()
    assert runner.epoch == 3
    assert (mmengine_work_dir / 'epoch_3.pth').is_file()
    loss = runner.message_hub.get_scalar('train/loss')
    # The statistics methods, pickled by reference, came back.
    assert np.isfinite(loss.mean()) and np.isfinite(loss.current())


def test_numpy_scalars_of_any_numeric_dtype_load():
    # e.g. the best_score CheckpointHook stores is whatever scalar type the metric returned.
    values = {np.dtype(t).name: t(1) for t in (np.bool_, np.int32, np.int64, np.uint8, np.float16,
                                               np.float32, np.float64)}
    values['array'] = np.arange(3, dtype=np.float32)
    buffer = io.BytesIO()
    torch.save(values, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert {k: type(v) for k, v in loaded.items()} == {k: type(v) for k, v in values.items()}
    np.testing.assert_array_equal(loaded['array'], values['array'])


class RunsShell:

    def __reduce__(self):
        return (os.system, ('echo pwned', ))


class ReachesHistoryBufferInit:

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.mark.parametrize('payload, message', [(RunsShell(), 'is blocked'),
                                              (ReachesHistoryBufferInit(), 'refused getattr')])
def test_malicious_checkpoint_still_refused(payload, message):
    buffer = io.BytesIO()
    torch.save({'state_dict': {}, 'meta': payload}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError, match=message):
        torch.load(buffer)


def test_mmengine_allowlist_is_idempotent():
    before = list(torch.serialization.get_safe_globals())
    assert compat.allow_mmengine_checkpoint_globals() == 'allowlisted'
    assert sorted(map(repr, torch.serialization.get_safe_globals())) == sorted(map(repr, before))


# lvis on numpy >= 1.24

def box_polygon(x, y, w, h):
    return [[x, y, x, y + h, x + w, y + h, x + w, y]]


@pytest.fixture
def lvis_files(tmp_path):
    """A two-image LVIS-format ground truth and detections that match it exactly."""
    # image id: [(category id, x, y, w, h)]
    boxes = {1: [(1, 10, 10, 40, 30)], 2: [(1, 5, 5, 20, 20), (2, 30, 30, 50, 40)]}
    annotations, detections = [], []
    for image_id, objects in boxes.items():
        for category_id, x, y, w, h in objects:
            box = dict(image_id=image_id, category_id=category_id, bbox=[x, y, w, h])
            annotations.append(dict(box, id=len(annotations) + 1, area=w * h,
                                    segmentation=box_polygon(x, y, w, h)))
            detections.append(dict(box, score=0.9))
    ground_truth = dict(
        images=[dict(id=i, width=100, height=100, neg_category_ids=[],
                     not_exhaustive_category_ids=[]) for i in boxes],
        categories=[dict(id=1, name='cup', frequency='f'), dict(id=2, name='kite', frequency='r')],
        annotations=annotations)
    gt_file, dt_file = tmp_path / 'lvis_gt.json', tmp_path / 'lvis_dt.json'
    gt_file.write_text(json.dumps(ground_truth))
    dt_file.write_text(json.dumps(detections))
    return gt_file, dt_file


def evaluate_lvis_code(gt_file, dt_file):
    """Source running lvis' own LVISEval end to end; it prints AP and the AP of rare categories."""
    return f"""
from lvis import LVISEval  # as mmdet's LVISMetric imports it
lvis_eval = LVISEval({str(gt_file)!r}, {str(dt_file)!r}, iou_type='bbox')
lvis_eval.evaluate()
lvis_eval.accumulate()
lvis_eval.summarize()
print(float(lvis_eval.results['AP']), float(lvis_eval.results['APr']))
"""


def parse_aps(stdout):
    return [float(ap) for ap in stdout.split()]


def test_lvis_eval_fails_without_fix(lvis_files):
    result = run_python(evaluate_lvis_code(*lvis_files))
    if result.returncode == 0:
        pytest.skip('lvis evaluates without the fix in this environment')
    assert "AttributeError: module 'numpy' has no attribute 'float'" in result.stderr
    assert 'lvis/eval.py' in result.stderr


def test_lvis_eval_with_fix(lvis_files, capsys):
    exec(evaluate_lvis_code(*lvis_files), {})
    # Perfect detections; APr covers the rare category.
    assert parse_aps(capsys.readouterr().out) == pytest.approx([1.0, 1.0])


def test_lvis_fix_when_lvis_imported_before_genrep(lvis_files):
    result = run_python('import lvis, genrep' + evaluate_lvis_code(*lvis_files))
    assert result.returncode == 0, result.stderr
    assert parse_aps(result.stdout) == pytest.approx([1.0, 1.0])


def test_lvis_fix_leaves_numpy_alone_and_is_idempotent():
    import lvis.eval
    assert 'float' not in vars(np)
    assert lvis.eval.np.float is float and lvis.eval.np.cumsum is np.cumsum
    assert compat.give_lvis_eval_numpy_float() == 'already-patched'
    assert not any(isinstance(finder, compat._PatchOnImport) for finder in sys.meta_path)


def test_mmpretrain_models_fail_without_the_multimodal_fix():
    # genrep's other fixes (torchvision) are needed to get this far; this one is undone.
    result = run_python('import genrep\nfrom mmpretrain.utils import dependency\n'
                        'dependency.WITH_MULTIMODAL = dependency.satisfy_requirement('
                        "'transformers>=4.28.0')\nimport mmpretrain.models")
    if result.returncode == 0:
        pytest.skip('mmpretrain.models imports without the fix in this environment')
    assert 'NoneType takes no arguments' in result.stderr or 'transformers' in result.stderr


def test_mmpretrain_models_import_with_the_multimodal_fix():
    """With genrep imported first, mmpretrain's models import and its classifiers build; the
    multimodal models are placeholders, as where transformers is absent."""
    result = run_python('import genrep\nimport mmpretrain.models\n'
                        'from mmpretrain.registry import MODELS\n'
                        "MODELS.build(dict(type='LinearClsHead', num_classes=3, in_channels=4))\n"
                        "print(genrep.compat.keep_mmpretrain_multimodal_models_off())")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] in ('already-patched', 'not-needed', 'absent')

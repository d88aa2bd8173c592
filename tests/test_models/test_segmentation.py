"""Segmentation through GenRep: the adapter on mmseg's Mask2Former (one head forward, dense student
scores), the open-vocabulary Mask2Former head (text-embedding query classifier, vocabulary swapped
at test) and the hook that gives each phase its dataset's names."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.structures import PixelData

from conftest import REPO_ROOT

SCHEDULER = dict(num_train_timesteps=20, beta_schedule='linear', beta_start=1e-3, beta_end=0.2,
                 variance_type='fixed_small', clip_sample=False)
NAMES = ['dog', 'tree', 'car', 'flower']


def tiny_mask2former(open_vocab=False, cache_dir=None):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'tests/data/configs/mask2former_diffusion_tiny.py'))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    head = cfg.model.decode_head
    if open_vocab:
        head.pop('num_classes')
        head.loss_cls.pop('class_weight')
        head.update(type='genrep.OpenVocabMask2FormerHead', class_names=NAMES,
                    text_encoder=dict(type='genrep.MiniLMTextEncoder', cache_dir=str(cache_dir)))
    return cfg.model


def seg_batch(model, n=2):
    from mmseg.structures import SegDataSample
    samples = []
    for i in range(n):
        seg = torch.full((1, 64, 64), 255, dtype=torch.long)
        seg[:, 8:40, 8 + i * 8:40] = i + 1
        seg[:, 40:, :] = 0
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=seg),
                                     metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64))))
    return model.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(n)],
             data_samples=samples), training=True)


def build_genrep(perception):
    DefaultScope._instance_dict.clear()
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='genrep.GenRep', perception=perception, task=dict(type='SegmentationAdapter'),
        stage=1, schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER),
        posterior=dict(type='ReverseChainPosterior', burn_in=1, thinning=1, temperature=0.1,
                       schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER,
                                     num_inference_steps=3)),
        num_candidates=3, distill_images=1))


def test_segmentation_adapter_reads_mask2former_once_and_distils_densely():
    model = build_genrep(tiny_mask2former())
    data = seg_batch(model.perception)
    head = model.perception.decode_head
    calls = []
    handle = head.register_forward_hook(lambda *args: calls.append(1))
    torch.manual_seed(0)  # Mask2Former samples the points of its mask losses
    out = model.task.forward_train(model.perception, data['inputs'], data['data_samples'], True)
    handle.remove()
    assert len(calls) == 1  # one forward of the head for losses and scores
    # the same losses as mmseg's own EncoderDecoder.loss (same weights, same inputs)
    torch.manual_seed(0)
    reference = model.perception.loss(data['inputs'], data['data_samples'])
    assert set(out.losses) == set(reference)
    for name in ('decode.loss_cls', 'decode.loss_mask', 'decode.loss_dice'):
        torch.testing.assert_close(out.losses[name], reference[name])
    scores = out.scores
    assert scores.granularity == 'dense' and scores.logits.shape[:2] == (2, 4)
    # ignore index 255 is not valid; class 0 (unlabelled in ADE's reduced labels) is 255 here too
    assert not scores.valid[0, 0, 0] and scores.valid[0, 10, 10]
    losses = model.loss(data['inputs'], data['data_samples'])
    distil = losses['percept'].gen_distil
    assert torch.isfinite(distil) and distil > 0
    parsed, _ = model.parse_losses(losses)
    parsed.backward()
    assert model.denoiser.model.conv_in.weight.grad.abs().sum() > 0


def test_open_vocabulary_mask2former_swaps_its_vocabulary(tmp_path):
    DefaultScope._instance_dict.clear()
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(tiny_mask2former(open_vocab=True, cache_dir=tmp_path))
    head = model.decode_head
    assert type(head.cls_embed).__name__ == 'TextEmbeddingClassifier'
    assert head.num_classes == 4 and head.class_weight == [1.0] * 4 + [0.1]
    data = seg_batch(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert head.cls_embed.projection.weight.grad.abs().sum() > 0

    model.eval()
    new_names = ['puppy', 'oak', 'truck', 'rose', 'sky', 'road']
    head.set_class_names(new_names)
    assert head.num_classes == 6 and head.class_names == new_names
    with torch.no_grad():
        logits = model.encode_decode(data['inputs'], [s.metainfo for s in data['data_samples']])
    assert logits.shape[1] == 6
    # the query classifier's weights survive the swap: the same projection scores new names
    cls = head.cls_embed(torch.randn(2, 3, 32))
    assert cls.shape == (2, 3, 7)  # 6 names + no object


def test_open_vocabulary_hook_gives_each_phase_its_dataset_names(tmp_path):
    from genrep.engine import OpenVocabularyHook
    from genrep.engine.vocabulary_hook import vocabulary_modules
    DefaultScope._instance_dict.clear()
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    model = MODELS.build(tiny_mask2former(open_vocab=True, cache_dir=tmp_path))
    # the head owns the classifier: it alone is called
    assert vocabulary_modules(model) == [model.decode_head]

    class Loader:
        def __init__(self, classes):
            self.dataset = type('D', (), dict(metainfo=dict(classes=classes)))()

    class Logger:
        def info(self, message):
            pass

    runner = type('R', (), {})()
    runner.model, runner.logger = model, Logger()
    runner.train_dataloader = Loader(('dog', 'tree'))
    runner.val_dataloader = Loader(('cat', 'bush', 'bus'))
    runner.test_dataloader = Loader(('sea', ))
    hook = OpenVocabularyHook()
    hook.before_train_iter(runner, 0)
    assert model.decode_head.class_names == ['dog', 'tree']
    hook.before_val(runner)
    assert model.decode_head.class_names == ['cat', 'bush', 'bus']
    hook.before_train_iter(runner, 1)
    assert model.decode_head.class_names == ['dog', 'tree']
    hook.before_test(runner)
    assert model.decode_head.num_classes == 1
    OpenVocabularyHook(test_classes=['a', 'b']).before_test(runner)
    assert model.decode_head.class_names == ['a', 'b']


def test_vocabulary_from_a_registered_dataset_class():
    import pytest
    from mmseg.datasets import ADE20KDataset, COCOStuffDataset

    from genrep.models.heads.vocabulary import dataset_class_names
    assert dataset_class_names('mmseg.COCOStuffDataset') == list(
        COCOStuffDataset.METAINFO['classes'])
    assert len(dataset_class_names('mmseg.ADE20KDataset')) == len(
        ADE20KDataset.METAINFO['classes']) == 150
    with pytest.raises(ValueError, match="class_names='mmseg.NoSuchSet'"):
        dataset_class_names('mmseg.NoSuchSet')


def test_generation_is_conditioned_on_each_images_dominant_class():
    """The class covering most labelled pixels, counted independently with numpy; ignored pixels
    never win, an image with no labelled pixel gets the null class."""
    import numpy as np
    from mmseg.structures import SegDataSample

    from genrep.models.tasks.segmentation import SegmentationAdapter
    rng = np.random.default_rng(0)
    maps = [rng.choice([3, 7, 255], size=(9, 11), p=[0.2, 0.3, 0.5]),
            np.full((9, 11), 255),
            np.where(rng.random((9, 11)) < 0.6, 255, rng.integers(0, 5, (9, 11)))]
    maps[0][:, :2] = 3  # 3 and 7 compete: the count decides
    samples = []
    for label in maps:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None].long())
        samples.append(sample)

    def numpy_dominant(label):
        values, counts = np.unique(label[label != 255], return_counts=True)
        return int(values[counts.argmax()]) if len(values) else 99

    adapter = SegmentationAdapter()
    got = adapter.generation_labels(samples, null_class=99, device=torch.device('cpu'))
    assert got.tolist() == [numpy_dominant(m) for m in maps]
    assert got[1] == 99
    unconditional = SegmentationAdapter(generation_condition='null')
    assert unconditional.generation_labels(samples, 99, torch.device('cpu')).tolist() == [99] * 3
    with pytest.raises(ValueError, match='generation_condition'):
        SegmentationAdapter(generation_condition='largest')

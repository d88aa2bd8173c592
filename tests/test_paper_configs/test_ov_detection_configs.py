"""The paper's open-vocabulary detection configs (configs/genrep/ov_{coco,lvis}_ldm*.py) load,
build from a tiny random Stable-Diffusion-style checkpoint and a tiny local CLIP text model
written with save_pretrained where the configs look for them, and run two training iterations
(base names) and one test iteration (all 65 names) through mmengine's Runner, on a tiny COCO in
the official layout turned into the OV-COCO files by tools/dataset_converters/ov_coco_split.py
(LVIS: a tiny LVIS v1 with rare annotations removed by lvis_remove_rare.py). OVCocoMetric's AP50
(all / base / novel) equals pycocotools' COCOeval, LVISMetric's AP / APr / APc / APf lvis'
LVISEval, on the same predictions."""
import json
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from metric_oracles import checked_test_ap50
from paper_config_helpers import (CROP, TINY_VAE_FACTOR, build_runner, config_path,
                                  write_coco, write_dit_checkpoint, write_lvis,
                                  write_sd_checkpoint)

from conftest import load_tool
from tiny_models import write_tiny_clip

TINY_UNET_CHANNELS = (8, 16, 16, 32)
TINY_SIZE_DIVISOR = 16  # tiny VAE (x2) times the UNet's deepest stride (x8)
CLIP_DIM = 24
# base and novel classes in every split, plus a class outside the 65 (hair drier)
TRAIN_IMAGES = [['person', 'dog', 'car'], ['cat', 'bicycle'], ['bus', 'truck', 'hair drier']]
VAL_IMAGES = [['person', 'cat', 'dog'], ['car', 'bus'], ['airplane', 'bird', 'person'],
              ['umbrella', 'tie', 'chair', 'chair']]
# the GenRep stage-1 runs' distillation made small: a 4-step reverse chain (burn-in 1, every
# later step kept) and 3 candidate classes
SHORT_CHAIN = {
    'model.posterior.schedule.num_inference_steps': 4,
    'model.posterior.burn_in': 1,
    'model.posterior.thinning': 1,
    'model.num_candidates': 3,
}


@pytest.fixture
def ov_coco_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_coco('data/coco', TRAIN_IMAGES, split='train', size=(48, 64))
    write_coco('data/coco', VAL_IMAGES, split='val', size=(48, 64), seed=1)
    tool = load_tool('tools/dataset_converters/ov_coco_split.py')
    tool.main(['--data-root', 'data/coco'])
    write_sd_checkpoint('checkpoints/stable-diffusion-v1-5')
    write_tiny_clip('checkpoints/clip-vit-base-patch16', projection_dim=CLIP_DIM)
    return tmp_path


def tiny_data(scale=(64, 48)) -> dict:
    """The data and loop overrides every tiny OV detection run shares: ``scale`` (w, h) images,
    two iterations of two images, predictions written for pycocotools / lvis to read."""
    return {
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.pipeline.2.scale': scale,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'test_dataloader.dataset.pipeline.1.scale': scale,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'val_dataloader.dataset.pipeline.1.scale': scale,
        'train_cfg.max_iters': 2,
        'train_cfg.val_begin': 1000,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1000,
        'test_evaluator.outfile_prefix': 'work/predictions',
    }


def tiny_detector(prefix: str, cache_dir: str) -> dict:
    """The Faster R-CNN shrunk to the tiny UNet's channels and strides (2, 4, 8, 16 px: the tiny
    VAE halves once), 64 x 48 images, two iterations, every box scored at test."""
    return {
        f'{prefix}.data_preprocessor.pad_size_divisor': TINY_SIZE_DIVISOR,
        f'{prefix}.neck.in_channels': list(TINY_UNET_CHANNELS),
        f'{prefix}.neck.out_channels': 32,
        f'{prefix}.rpn_head.in_channels': 32,
        f'{prefix}.rpn_head.feat_channels': 32,
        f'{prefix}.rpn_head.anchor_generator.strides': [2, 4, 8, 16, 32],
        f'{prefix}.roi_head.bbox_roi_extractor.out_channels': 32,
        f'{prefix}.roi_head.bbox_roi_extractor.featmap_strides': [2, 4, 8, 16],
        f'{prefix}.roi_head.bbox_head.in_channels': 32,
        f'{prefix}.roi_head.bbox_head.fc_out_channels': 64,
        f'{prefix}.roi_head.bbox_head.text_encoder.cache_dir': cache_dir,
        f'{prefix}.test_cfg.rcnn.score_thr': 0.0,
        **tiny_data(),
    }


# The tiny DINO: one encoder and two decoder layers, 20 queries, narrow feed-forward layers; the
# width stays 256 (mmdet's DinoTransformerDecoder encodes reference boxes at 2 x 128 channels
# whatever the width). At test every (query, class) pair is kept, so each name is predicted.
TINY_DINO_QUERIES = 20


def tiny_dino(prefix: str, cache_dir: str) -> dict:
    """ov_coco_dino_ldm.py's DINO shrunk to the tiny UNet's channels and CPU size."""
    return {
        f'{prefix}.data_preprocessor.pad_size_divisor': TINY_SIZE_DIVISOR,
        f'{prefix}.neck.in_channels': list(TINY_UNET_CHANNELS),
        f'{prefix}.num_queries': TINY_DINO_QUERIES,
        f'{prefix}.encoder.num_layers': 1,
        f'{prefix}.encoder.layer_cfg.ffn_cfg.feedforward_channels': 64,
        f'{prefix}.decoder.num_layers': 2,
        f'{prefix}.decoder.layer_cfg.ffn_cfg.feedforward_channels': 64,
        f'{prefix}.bbox_head.text_encoder.cache_dir': cache_dir,
        f'{prefix}.dn_cfg.group_cfg.num_dn_queries': 10,
        f'{prefix}.test_cfg.max_per_img': TINY_DINO_QUERIES * 65,
        **tiny_data(),
    }


def load_tiny_ov(name: str, prefix: str, cache_dir: str, shrink=tiny_detector) -> Config:
    cfg = Config.fromfile(config_path(name))
    options = shrink(prefix, cache_dir)
    if cfg.train_dataloader.dataset.type == 'ClassBalancedDataset':  # OV-LVIS: a wrapper
        options = {k.replace('train_dataloader.dataset.pipeline',
                             'train_dataloader.dataset.dataset.pipeline'): v
                   for k, v in options.items()}
    cfg.merge_from_dict(options)
    return cfg


def pycocotools_ap50(gt_file, result_file, class_names, base, novel):
    """AP50 over ``class_names`` and its base / novel parts, by pycocotools' COCOeval alone."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(gt_file)
    dt = gt.loadRes(result_file)
    evaluator = COCOeval(gt, dt, 'bbox')
    cat_ids = gt.getCatIds(catNms=list(class_names))
    evaluator.params.catIds = cat_ids
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    names = {c['id']: c['name'] for c in gt.loadCats(cat_ids)}
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        precision = evaluator.eval['precision'][0, :, k, 0, -1]
        per_class[names[cat_id]] = precision[precision > -1]

    def mean_over(subset):
        values = np.concatenate([per_class[n] for n in subset if n in per_class])
        return float(values.mean()) if values.size else -1.0

    return evaluator.stats[1], mean_over(base), mean_over(novel)


def test_ov_coco_ldm_trains_on_base_and_tests_on_all_names(ov_coco_workdir):
    cfg = load_tiny_ov('ov_coco_ldm.py', 'model', str(ov_coco_workdir / 'text_cache'))
    runner = build_runner(cfg, str(ov_coco_workdir / 'work'))
    model = runner.model
    assert type(model).__name__ == 'FasterRCNN'
    head = model.roi_head.bbox_head
    assert type(head).__name__ == 'OpenVocabBBoxHead' and head.num_classes == 48
    assert list(model.backbone.out_channels) == list(TINY_UNET_CHANNELS)
    # the training data hold base boxes only (the cat-and-bicycle image keeps its bicycle)
    train = runner.train_dataloader.dataset
    labels = {train.metainfo['classes'][i['bbox_label']]
              for k in range(len(train)) for i in train.get_data_info(k)['instances']}
    assert labels == {'person', 'car', 'bicycle', 'truck'}
    runner.train()
    assert runner.iter == 2
    for name in ('loss_rpn_cls', 'loss_cls', 'loss_bbox'):
        assert math.isfinite(runner.message_hub.get_scalar(f'train/{name}').current())

    metrics = runner.test()
    assert head.num_classes == 65  # OpenVocabularyHook: the test names, novel included
    assert_ov_coco_ap50(cfg, metrics)


def assert_ov_coco_ap50(cfg, metrics):
    """OVCocoMetric's AP50 (all / base / novel) equals pycocotools' on the predictions the test
    wrote."""
    expected = pycocotools_ap50('data/coco/annotations/instances_val2017_ov_all.json',
                                'work/predictions.bbox.json', cfg.all_classes,
                                cfg.base_classes, cfg.novel_classes)
    assert metrics['coco/bbox_mAP_50'] == pytest.approx(round(expected[0], 3), abs=1e-9)
    assert metrics['coco/base_ap50'] == pytest.approx(expected[1], abs=1e-9)
    assert metrics['coco/novel_ap50'] == pytest.approx(expected[2], abs=1e-9)


def assert_ov_coco_test(cfg, metrics):
    """:func:`assert_ov_coco_ap50`, and the predictions name novel classes (scored by their text
    at test)."""
    assert_ov_coco_ap50(cfg, metrics)
    with open('work/predictions.bbox.json') as f:
        predictions = json.load(f)
    with open('data/coco/annotations/instances_val2017_ov_all.json') as f:
        names = {c['id']: c['name'] for c in json.load(f)['categories']}
    predicted = {names[p['category_id']] for p in predictions}
    assert predicted <= set(cfg.all_classes)
    assert predicted & set(cfg.novel_classes)
    return predicted


def test_ov_coco_dino_ldm_scores_queries_by_class_names(ov_coco_workdir):
    """The DETR-style decoder of A.4: mmdet's DINO on the SD backbone, its query classifiers the
    text embeddings of the base names in training and of all 65 at test."""
    cfg = load_tiny_ov('ov_coco_dino_ldm.py', 'model', str(ov_coco_workdir / 'text_cache'),
                       shrink=tiny_dino)
    # the paper's decoder: 6 layers, 8 heads, width 256
    full = Config.fromfile(config_path('ov_coco_dino_ldm.py')).model
    assert full.decoder.num_layers == 6 and full.bbox_head.embed_dims == 256
    assert full.decoder.layer_cfg.self_attn_cfg.num_heads == 8
    runner = build_runner(cfg, str(ov_coco_workdir / 'work'))
    model = runner.model
    assert type(model).__name__ == 'DINO'
    head = model.bbox_head
    assert type(head).__name__ == 'OpenVocabDINOHead' and head.num_classes == 48
    # one branch per decoder layer and the encoder's, each a text classifier
    assert len(head.cls_branches) == 3
    assert all(type(b).__name__ == 'QueryTextClassifier' for b in head.cls_branches)
    assert model.dn_query_generator.num_classes == 48
    runner.train()
    assert runner.iter == 2
    # mmdet's init_weights set the focal-loss prior on the classifier's bias
    prior = -math.log((1 - 0.01) / 0.01)
    assert all(abs(float(b.bias) - prior) < 0.05 for b in head.cls_branches)
    for name in ('loss_cls', 'loss_bbox', 'loss_iou', 'd0.loss_cls', 'enc_loss_cls',
                 'dn_loss_cls', 'dn_loss_bbox'):
        assert math.isfinite(runner.message_hub.get_scalar(f'train/{name}').current()), name

    metrics = runner.test()
    assert head.num_classes == 65 and head.cls_branches[0].text_embeddings.shape[0] == 65
    assert_ov_coco_test(cfg, metrics)


def test_ov_coco_metric_equals_pycocotools_on_the_same_predictions(ov_coco_workdir):
    """Predictions with real hits and misses (jittered ground truth, wrong classes, spurious
    boxes; seeded), scored by the config's OVCocoMetric and by pycocotools' COCOeval."""
    import genrep  # noqa: F401
    from mmdet.registry import METRICS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(config_path('ov_coco_ldm.py'))
    metric = METRICS.build(dict(cfg.test_evaluator, outfile_prefix='predictions'))
    classes = list(cfg.all_classes)
    metric.dataset_meta = dict(classes=classes, base_classes=list(cfg.base_classes),
                               novel_classes=list(cfg.novel_classes))
    gt_file = 'data/coco/annotations/instances_val2017_ov_all.json'
    with open(gt_file) as f:
        gt = json.load(f)
    names = {c['id']: c['name'] for c in gt['categories']}
    rng = np.random.default_rng(0)
    for image in gt['images']:
        boxes, scores, labels = [], [], []
        for ann in gt['annotations']:
            if ann['image_id'] != image['id']:
                continue
            x, y, w, h = ann['bbox']
            for _ in range(2):
                dx, dy = rng.normal(0, 0.15 * w), rng.normal(0, 0.15 * h)
                boxes.append([x + dx, y + dy, x + dx + w, y + dy + h])
                scores.append(float(rng.uniform(0.05, 1)))
                right = rng.uniform() < 0.7
                labels.append(classes.index(names[ann['category_id']]) if right else
                              int(rng.integers(len(classes))))
        for _ in range(3):
            x, y = rng.uniform(0, 40, 2)
            boxes.append([x, y, x + 10, y + 10])
            scores.append(float(rng.uniform(0, 0.5)))
            labels.append(int(rng.integers(len(classes))))
        pred = dict(bboxes=torch.tensor(boxes, dtype=torch.float32),
                    scores=torch.tensor(scores), labels=torch.tensor(labels))
        metric.process({}, [dict(img_id=image['id'], ori_shape=(image['height'],
                                                                 image['width']),
                                 pred_instances=pred)])
    metrics = metric.evaluate(len(gt['images']))
    expected = pycocotools_ap50(gt_file, 'predictions.bbox.json', classes, cfg.base_classes,
                                cfg.novel_classes)
    assert 0 < expected[0] < 1 and expected[1] > 0 and expected[2] > 0  # a real test
    assert metrics['coco/bbox_mAP_50'] == pytest.approx(round(expected[0], 3), abs=1e-9)
    assert metrics['coco/base_ap50'] == pytest.approx(expected[1], abs=1e-9)
    assert metrics['coco/novel_ap50'] == pytest.approx(expected[2], abs=1e-9)


@pytest.mark.slow
def test_ov_coco_ldm_genrep_stage1_distils_regions(ov_coco_workdir):
    cfg = load_tiny_ov('ov_coco_ldm_genrep_stage1.py', 'model.perception',
                       str(ov_coco_workdir / 'text_cache'))
    cfg.merge_from_dict(SHORT_CHAIN)
    runner = build_runner(cfg, str(ov_coco_workdir / 'work'))
    model = runner.model
    assert type(model).__name__ == 'GenRep' and type(model.task).__name__ == 'DetectionAdapter'
    # the class contexts start from the tiny SD text encoder's context of the 48 base names
    assert model.denoiser.num_classes == 48
    trainable = model.set_trainable(cfg.model.trainable)
    assert any('.attn1.' in n for n in trainable) and any('roi_head' in n for n in trainable)
    assert not any('resnets' in n for n in trainable)
    runner.train()
    distil = runner.message_hub.get_scalar('train/percept_loss_gen_distil').current()
    assert math.isfinite(distil) and distil >= 0
    checked_test_ap50(runner)


@pytest.mark.slow
def test_ov_coco_dino_ldm_genrep_stage1_distils_matched_queries(ov_coco_workdir):
    """Region L_gen_distil on DINO: the student's regions are the matched queries of the last
    decoder layer and the ground-truth boxes they are matched to."""
    cfg = load_tiny_ov('ov_coco_dino_ldm_genrep_stage1.py', 'model.perception',
                       str(ov_coco_workdir / 'text_cache'), shrink=tiny_dino)
    cfg.merge_from_dict(SHORT_CHAIN)
    runner = build_runner(cfg, str(ov_coco_workdir / 'work'))
    model = runner.model
    assert type(model.task).__name__ == 'QueryDetectionAdapter'
    assert type(model.perception).__name__ == 'DINO'
    trainable = model.set_trainable(cfg.model.trainable)
    assert any('.attn1.' in n for n in trainable)
    for part in ('neck', 'encoder', 'decoder', 'bbox_head', 'query_embedding'):
        assert any(n.startswith(f'perception.{part}.') for n in trainable), part
    assert not any('resnets' in n or '.vae.' in n for n in trainable)

    runner.train()
    distil = runner.message_hub.get_scalar('train/percept_loss_gen_distil').current()
    assert math.isfinite(distil) and distil >= 0
    assert math.isfinite(runner.message_hub.get_scalar('train/percept_loss_cls').current())
    # the student's regions (after training: weights initialised and loaded): one per
    # ground-truth box of the batch, at that box
    model.train()
    train = runner.train_dataloader
    batch = train.collate_fn([train.dataset[0], train.dataset[1]])
    data = model.data_preprocessor(batch, True)
    out = model.task.forward_train(model.perception, data['inputs'], data['data_samples'],
                                   with_scores=True)
    scores = out.scores
    boxes = [s.gt_instances.bboxes for s in data['data_samples']]
    assert scores.granularity == 'region' and scores.logits.shape[1] == 48
    assert len(scores.labels) == sum(len(b) for b in boxes) and bool(scores.valid.all())
    for image, image_boxes in enumerate(boxes):
        regions = scores.rois[scores.rois[:, 0] == image, 1:]
        for box in image_boxes:
            assert torch.isclose(regions, box, atol=1e-3).all(1).any()
    assert scores.logits.requires_grad
    assert set(out.losses) >= {'loss_cls', 'loss_bbox', 'loss_iou', 'enc_loss_cls',
                               'dn_loss_cls'}

    checked_test_ap50(runner, (('coco/bbox_mAP_50', None), ('coco/novel_ap50', 'novel_classes')))


@pytest.fixture
def ov_lvis_workdir(tmp_path, monkeypatch):
    """A tiny LVIS v1 (two rare, one common, one frequent class present) with the rare
    annotations removed from training by lvis_remove_rare.py, and the tiny SD and CLIP."""
    from mmdet.datasets import LVISV1Dataset
    monkeypatch.chdir(tmp_path)
    names = LVISV1Dataset.METAINFO['classes']
    frequencies = {names[0]: 'r', names[1]: 'c', names[2]: 'f', names[3]: 'r'}
    write_lvis('data/lvis_v1', [[names[0], names[1]], [names[2], names[1]], [names[3], names[2]]],
               frequencies, split='train', size=(48, 64))
    write_lvis('data/lvis_v1', [[names[0], names[2]], [names[1], names[3]]], frequencies,
               split='val', size=(48, 64), seed=1)
    tool = load_tool('tools/dataset_converters/lvis_remove_rare.py')
    tool.main(['--data-root', 'data/lvis_v1'])
    write_sd_checkpoint('checkpoints/stable-diffusion-v1-5')
    write_tiny_clip('checkpoints/clip-vit-base-patch16', projection_dim=CLIP_DIM)
    return tmp_path


def assert_lvis_test(metrics):
    """LVISMetric's AP / APr / APc / APf / AP50 equal lvis' LVISEval on the written
    predictions."""
    from lvis import LVIS, LVISEval, LVISResults
    gt = LVIS('data/lvis_v1/annotations/lvis_v1_val.json')
    evaluator = LVISEval(gt, LVISResults(gt, 'work/predictions.bbox.json'), 'bbox')
    evaluator.run()
    expected = evaluator.get_results()
    for key in ('AP', 'APr', 'APc', 'APf', 'AP50'):
        assert metrics[f'lvis/bbox_{key}'] == pytest.approx(round(float(expected[key]), 3),
                                                            abs=1e-9), key


@pytest.mark.slow
def test_ov_lvis_ldm_trains_without_rare_boxes_and_lvis_eval_agrees(ov_lvis_workdir):
    """OV-LVIS: the training file has no box of a rare class (the converter's output), the
    training vocabulary has no rare name (1203 - 2 here; 866 on LVIS), the test runs on all 1203
    names, and LVISMetric's AP / APr / APc / APf equal lvis' LVISEval on the same predictions."""
    cfg = load_tiny_ov('ov_lvis_ldm.py', 'model', str(ov_lvis_workdir / 'text_cache'))
    runner = build_runner(cfg, str(ov_lvis_workdir / 'work'))
    head = runner.model.roi_head.bbox_head
    assert head.num_classes == 1201 and runner.model.backbone.denoiser.num_classes == 1201
    train = runner.train_dataloader.dataset
    labels = {i['bbox_label'] for k in range(len(train))
              for i in train.get_data_info(k)['instances']}
    # the common and frequent classes (names 1 and 2, labels 0 and 1 once the rare names 0 and 3
    # are out of the vocabulary)
    assert labels == {0, 1}
    runner.train()
    assert math.isfinite(runner.message_hub.get_scalar('train/loss_cls').current())
    assert_lvis_test(runner.test())


def tiny_dit_detector(prefix: str, cache_dir: str) -> dict:
    """The tiny Faster R-CNN on the tiny DiT (4 blocks of width 16, patch 2, over the tiny VAE:
    features at strides 2, 4, 8, 16): images resized into its native CROP x CROP input and the
    batch padded to it."""
    return {
        **tiny_detector(prefix, cache_dir),
        **tiny_data(scale=(CROP, CROP)),
        f'{prefix}.data_preprocessor.pad_size_divisor': CROP,
        f'{prefix}.neck.in_channels': [16] * 4,
    }


def record_dit_grids(model):
    """The token grids of every DiT forward, appended as the DiT's position embedding sees them."""
    grids = []
    dit = model.backbone.denoiser.model
    assert type(dit).__name__ == 'DiTTransformer2DModel'
    dit.pos_embed.register_forward_pre_hook(lambda _m, args: grids.append(args[0].shape[-2:]))
    return grids


def test_ov_coco_dit_runs_on_its_native_token_grid(ov_coco_workdir):
    """ov_coco_dit.py: the OV Faster R-CNN on a DiT; every forward, train and test, sees the
    DiT's own sample_size, and novel names are scored at test."""
    sample_size = CROP // TINY_VAE_FACTOR
    write_dit_checkpoint('checkpoints/DiT-XL-2-512', sample_size=sample_size)
    cfg = load_tiny_ov('ov_coco_dit.py', 'model', str(ov_coco_workdir / 'text_cache'),
                       shrink=tiny_dit_detector)
    assert cfg.dit_image_size == 8 * cfg.dit_sample_size == 512
    assert cfg.model.data_preprocessor.pad_size_divisor == CROP
    runner = build_runner(cfg, str(ov_coco_workdir / 'work'))
    model = runner.model
    assert type(model.roi_head.bbox_head).__name__ == 'OpenVocabBBoxHead'
    grids = record_dit_grids(model)
    runner.train()
    assert runner.iter == 2
    for name in ('loss_rpn_cls', 'loss_cls', 'loss_bbox'):
        assert math.isfinite(runner.message_hub.get_scalar(f'train/{name}').current())
    scores = []
    hook = model.roi_head.bbox_head.fc_cls.register_forward_hook(
        lambda module, args, output: scores.append(output.detach()))
    metrics = runner.test()
    hook.remove()
    assert model.roi_head.bbox_head.num_classes == 65
    # Novel names are scored at test: every region gets a score column for each of the 65 names
    # (and background), the novel ones varying from region to region as the base ones do. Which
    # classes end up among the predictions of a 2-iteration random model is left to chance (the
    # Faster R-CNN LDM test asserts a novel prediction on its own seed).
    assert_ov_coco_ap50(cfg, metrics)
    scores = torch.cat(scores)
    assert scores.shape[-1] == 65 + 1 and torch.isfinite(scores).all()
    novel = [cfg.all_classes.index(name) for name in cfg.novel_classes]
    assert len(novel) == 17 and (scores[:, novel].std(0) > 0).all()
    assert len(grids) == 2 + len(VAL_IMAGES)
    assert all(tuple(g) == (sample_size, sample_size) for g in grids)


@pytest.mark.slow
def test_ov_lvis_dit_trains_and_lvis_eval_agrees(ov_lvis_workdir):
    sample_size = CROP // TINY_VAE_FACTOR
    write_dit_checkpoint('checkpoints/DiT-XL-2-512', sample_size=sample_size)
    cfg = load_tiny_ov('ov_lvis_dit.py', 'model', str(ov_lvis_workdir / 'text_cache'),
                       shrink=tiny_dit_detector)
    runner = build_runner(cfg, str(ov_lvis_workdir / 'work'))
    assert runner.model.roi_head.bbox_head.num_classes == 1201  # the training vocabulary
    grids = record_dit_grids(runner.model)
    runner.train()
    assert math.isfinite(runner.message_hub.get_scalar('train/loss_cls').current())
    assert_lvis_test(runner.test())
    assert all(tuple(g) == (sample_size, sample_size) for g in grids)

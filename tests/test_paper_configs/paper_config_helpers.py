"""What the paper-config tests share: tiny diffusers checkpoints written with ``save_pretrained`` in
the folder layout the configs read, a few ADE20K images in the real ADEChallengeData2016 tree, the
``--cfg-options``-style overrides that shrink a config to CPU size, and a Runner built as
tools/train.py builds it."""
import os.path as osp

import numpy as np
from mmengine.config import Config

from conftest import REPO_ROOT
from tiny_models import dit_cfg, unet2d_condition_cfg, vae_cfg, write_tiny_clip

# Side of the training crops and test windows; the tiny VAE halves the resolution once, so the
# tiny DiT's native latent grid is CROP / 2 (sample_size).
CROP = 32
TINY_VAE_FACTOR = 2


def config_path(name: str) -> str:
    return osp.join(REPO_ROOT, 'configs', 'genrep', name)


def write_sd_checkpoint(root):
    """A tiny random Stable-Diffusion-style folder: ``unet/`` (UNet2DConditionModel), ``vae/``
    (AutoencoderKL), ``text_encoder/`` (a CLIP text model as wide as the UNet's cross-attention)
    and ``tokenizer/``, as StableDiffusionPipeline.save_pretrained lays them out."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    unet = unet2d_condition_cfg()['config']
    UNet2DConditionModel.from_config(unet).save_pretrained(osp.join(root, 'unet'))
    AutoencoderKL.from_config(vae_cfg()['config']).save_pretrained(osp.join(root, 'vae'))
    write_tiny_clip(osp.join(root, 'text_encoder'), hidden_size=unet['cross_attention_dim'])
    write_tiny_clip(osp.join(root, 'tokenizer'), with_model=False)
    return root


def write_dit_checkpoint(root, sample_size=CROP // TINY_VAE_FACTOR):
    """A tiny random DiT folder: ``transformer/`` (DiTTransformer2DModel, learned variance, 1000
    ImageNet-style classes plus the null row) and ``vae/``, as DiTPipeline.save_pretrained."""
    from diffusers import AutoencoderKL, DiTTransformer2DModel
    config = dict(dit_cfg(num_classes=1000)['config'], sample_size=sample_size)
    DiTTransformer2DModel.from_config(config).save_pretrained(osp.join(root, 'transformer'))
    AutoencoderKL.from_config(vae_cfg()['config']).save_pretrained(osp.join(root, 'vae'))
    return root


def write_ade20k(data_root, num_train=2, num_val=1, size=(40, 48), seed=0):
    """ADEChallengeData2016 in its real layout: images/{training,validation}/*.jpg and
    annotations/{training,validation}/*.png, uint8 labels 0..150 where 0 is 'unlabelled' (which
    ``reduce_zero_label`` turns into the ignore index 255) and 1..150 the classes. Each image is a
    few class blocks with class-dependent colours, a little unlabelled border included."""
    import mmcv
    rng = np.random.default_rng(seed)
    height, width = size
    for split, count in (('training', num_train), ('validation', num_val)):
        for index in range(count):
            classes = rng.choice(np.arange(1, 151), size=3, replace=False)
            label = np.zeros((height, width), np.uint8)
            label[4:-4, 4:width // 2] = classes[0]
            label[4:-4, width // 2:-4] = classes[1]
            label[height // 3:2 * height // 3, width // 3:2 * width // 3] = classes[2]
            colours = rng.integers(0, 256, (151, 3))
            image = colours[label] + rng.integers(-20, 20, (height, width, 3))
            name = f'ADE_{split[:5]}_{index:08d}'
            mmcv.imwrite(np.clip(image, 0, 255).astype(np.uint8),
                         osp.join(data_root, 'images', split, f'{name}.jpg'))
            mmcv.imwrite(label, osp.join(data_root, 'annotations', split, f'{name}.png'))
    return data_root


def write_coco_stuff164k(data_root, num_train=2, size=(40, 48), seed=0):
    """COCO-Stuff 164k in mmseg's layout (what mmseg's tools/dataset_converters/coco_stuff164k.py
    writes): images/train2017/<12-digit id>.jpg and annotations/train2017/<id>_labelTrainIds.png,
    uint8 labels 0..170 (the 171 classes of COCOStuffDataset) with 255 ignored, no zero
    reduction. Each image is a few class blocks with class-dependent colours and an ignored
    border."""
    import mmcv
    rng = np.random.default_rng(seed)
    height, width = size
    for index in range(num_train):
        classes = rng.choice(np.arange(171), size=3, replace=False)
        label = np.full((height, width), 255, np.uint8)
        label[4:-4, 4:width // 2] = classes[0]
        label[4:-4, width // 2:-4] = classes[1]
        label[height // 3:2 * height // 3, width // 3:2 * width // 3] = classes[2]
        colours = rng.integers(0, 256, (256, 3))
        image = colours[label] + rng.integers(-20, 20, (height, width, 3))
        name = f'{index + 1:012d}'
        mmcv.imwrite(np.clip(image, 0, 255).astype(np.uint8),
                     osp.join(data_root, 'images', 'train2017', f'{name}.jpg'))
        mmcv.imwrite(label, osp.join(data_root, 'annotations', 'train2017',
                                     f'{name}_labelTrainIds.png'))
    return data_root


def tiny_head(prefix: str, in_channels) -> dict:
    """Mask2Former shrunk: 8 queries, 32 channels, one pixel-decoder layer, two decoder layers,
    256 sampled points. ``prefix``: where the stock segmentor sits (``model`` or
    ``model.perception``)."""
    head = f'{prefix}.decode_head'
    return {
        f'{head}.in_channels': list(in_channels),
        f'{head}.strides': [2, 4, 8, 16],
        f'{head}.feat_channels': 32,
        f'{head}.out_channels': 32,
        f'{head}.num_queries': 8,
        f'{head}.pixel_decoder.norm_cfg.num_groups': 8,
        f'{head}.pixel_decoder.encoder.num_layers': 1,
        f'{head}.pixel_decoder.encoder.layer_cfg.self_attn_cfg':
        dict(embed_dims=32, num_heads=4, num_points=2),
        f'{head}.pixel_decoder.encoder.layer_cfg.ffn_cfg':
        dict(embed_dims=32, feedforward_channels=64),
        f'{head}.pixel_decoder.positional_encoding.num_feats': 16,
        f'{head}.positional_encoding.num_feats': 16,
        f'{head}.transformer_decoder.num_layers': 2,
        f'{head}.transformer_decoder.layer_cfg.self_attn_cfg.embed_dims': 32,
        f'{head}.transformer_decoder.layer_cfg.self_attn_cfg.num_heads': 4,
        f'{head}.transformer_decoder.layer_cfg.cross_attn_cfg.embed_dims': 32,
        f'{head}.transformer_decoder.layer_cfg.cross_attn_cfg.num_heads': 4,
        f'{head}.transformer_decoder.layer_cfg.ffn_cfg.embed_dims': 32,
        f'{head}.transformer_decoder.layer_cfg.ffn_cfg.feedforward_channels': 64,
        f'{head}.train_cfg.num_points': 256,
    }


def tiny_data() -> dict:
    """CROP-pixel crops and test images, two images a batch, no worker processes, two iterations
    and no validation after them (the test loop is run on its own)."""
    return {
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.pipeline.2.scales': [CROP, CROP + 8],
        'train_dataloader.dataset.pipeline.2.max_size': 4 * CROP,
        'train_dataloader.dataset.pipeline.3.crop_size': (CROP, CROP),
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'test_dataloader.dataset.pipeline.1.scale': (4 * CROP, CROP),
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'val_dataloader.dataset.pipeline.1.scale': (4 * CROP, CROP),
        'train_cfg.max_iters': 2,
        'train_cfg.val_begin': 1000,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.save_last': False,
        'env_cfg.cudnn_benchmark': False,
    }


def load_tiny(name: str, prefix: str, in_channels, size_divisor: int, extra=None) -> Config:
    """The config ``configs/genrep/<name>`` with the tiny overrides merged as --cfg-options are."""
    cfg = Config.fromfile(config_path(name))
    options = {**tiny_head(prefix, in_channels), **tiny_data()}
    # The segmentor's preprocessor and the top-level one, which the Runner hands to a model
    # config without its own (GenRep, which then uses it in place of the segmentor's).
    for preprocessor in (f'{prefix}.data_preprocessor', 'data_preprocessor'):
        options[f'{preprocessor}.size'] = (CROP, CROP)
        if cfg.data_preprocessor.get('test_cfg'):
            options[f'{preprocessor}.test_cfg.size_divisor'] = size_divisor
    options.update(extra or {})
    cfg.merge_from_dict(options)
    return cfg


def build_runner(cfg: Config, work_dir: str):
    """The Runner as tools/train.py builds it (config checks, resumable loops)."""
    from mmengine.runner import Runner

    from genrep.engine.config_checks import validate_config
    from genrep.engine.runner_utils import use_resumable_loops
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    validate_config(cfg, cfg.filename)
    use_resumable_loops(cfg)
    return Runner.from_cfg(cfg)


# COCO's official category ids (1..90 with ten gaps), in the order of mmdet's CocoDataset names.
COCO_CATEGORY_IDS = [i for i in range(1, 91)
                     if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def coco_boxes_image(rng, size, boxes, colours):
    """An image of ``size`` (h, w) with each box [x, y, w, h] filled in its colour."""
    height, width = size
    image = rng.integers(0, 60, (height, width, 3))
    for (x, y, w, h), colour in zip(boxes, colours):
        image[int(y):int(y + h), int(x):int(x + w)] = colour
    return np.clip(image, 0, 255).astype(np.uint8)


def write_coco(data_root, class_names_per_image, split='train', size=(40, 48), seed=0,
               year='2017', ann_name=None):
    """COCO in its official layout: ``<split>2017/<12-digit id>.jpg`` and
    ``annotations/instances_<split>2017.json`` with all 80 categories (official ids and names,
    supercategory), one box per listed class name in each image (xywh, area, iscrowd 0). Returns
    the json written."""
    import json
    import os

    import mmcv
    from mmdet.datasets import CocoDataset
    names = CocoDataset.METAINFO['classes']
    ids = dict(zip(names, COCO_CATEGORY_IDS))
    rng = np.random.default_rng(seed)
    height, width = size
    images, annotations = [], []
    for index, classes in enumerate(class_names_per_image):
        image_id = 1000 * (seed + 1) + index
        file_name = f'{image_id:012d}.jpg'
        boxes = []
        for k, _ in enumerate(classes):
            w, h = int(rng.integers(10, width // 2)), int(rng.integers(10, height // 2))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            boxes.append([float(x), float(y), float(w), float(h)])
        colours = [rng.integers(100, 256, 3) for _ in boxes]
        mmcv.imwrite(coco_boxes_image(rng, size, boxes, colours),
                     os.path.join(data_root, f'{split}{year}', file_name))
        images.append(dict(id=image_id, file_name=file_name, height=height, width=width,
                           license=1, coco_url='', flickr_url='', date_captured=''))
        for name, box in zip(classes, boxes):
            annotations.append(dict(id=len(annotations) + 1 + 100000 * seed, image_id=image_id,
                                    category_id=ids[name], bbox=box, area=box[2] * box[3],
                                    iscrowd=0, segmentation=[[box[0], box[1], box[0] + box[2],
                                                              box[1], box[0] + box[2],
                                                              box[1] + box[3], box[0],
                                                              box[1] + box[3]]]))
    data = dict(info=dict(description='tiny COCO'), licenses=[dict(id=1, name='', url='')],
                images=images, annotations=annotations,
                categories=[dict(id=ids[n], name=n, supercategory='thing') for n in names])
    os.makedirs(os.path.join(data_root, 'annotations'), exist_ok=True)
    with open(os.path.join(data_root, 'annotations',
                           ann_name or f'instances_{split}{year}.json'), 'w') as f:
        json.dump(data, f)
    return data


def write_lvis(data_root, class_names_per_image, frequencies, split='train', size=(40, 48),
               seed=0):
    """LVIS v1 in its official layout (``annotations/lvis_v1_<split>.json``, images under COCO's
    ``<split>2017/`` named by ``coco_url``), all 1203 categories of mmdet's LVISV1Dataset with
    ids 1..1203, ``frequency`` from ``frequencies`` (name -> 'r' / 'c' / 'f'; 'f' otherwise) and
    ``image_count`` / ``instance_count``; every absent category a verified negative."""
    import json
    import os

    import mmcv
    from mmdet.datasets import LVISV1Dataset
    names = LVISV1Dataset.METAINFO['classes']
    ids = {name: i + 1 for i, name in enumerate(names)}
    rng = np.random.default_rng(seed)
    height, width = size
    images, annotations = [], []
    for index, classes in enumerate(class_names_per_image):
        image_id = 1000 * (seed + 1) + index
        file_name = f'{image_id:012d}.jpg'
        boxes = []
        for _ in classes:
            w, h = int(rng.integers(10, width // 2)), int(rng.integers(10, height // 2))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            boxes.append([float(x), float(y), float(w), float(h)])
        colours = [rng.integers(100, 256, 3) for _ in boxes]
        mmcv.imwrite(coco_boxes_image(rng, size, boxes, colours),
                     os.path.join(data_root, f'{split}2017', file_name))
        present = {ids[n] for n in classes}
        images.append(dict(id=image_id, height=height, width=width, license=1,
                           coco_url=f'http://images.cocodataset.org/{split}2017/{file_name}',
                           flickr_url='', date_captured='', not_exhaustive_category_ids=[],
                           neg_category_ids=[i for i in range(1, 11) if i not in present]))
        for name, box in zip(classes, boxes):
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                    category_id=ids[name], bbox=box, area=box[2] * box[3],
                                    segmentation=[[box[0], box[1], box[0] + box[2], box[1],
                                                   box[0] + box[2], box[1] + box[3], box[0],
                                                   box[1] + box[3]]]))
    categories = []
    for name in names:
        mine = [a for a in annotations if a['category_id'] == ids[name]]
        categories.append(dict(id=ids[name], name=name, synset=f'{name}.n.01', synonyms=[name],
                               frequency=frequencies.get(name, 'f'), instance_count=len(mine),
                               image_count=len({a['image_id'] for a in mine}),
                               **{'def': name}))
    data = dict(info=dict(description='tiny LVIS'), licenses=[dict(id=1, name='', url='')],
                images=images, annotations=annotations, categories=categories)
    os.makedirs(os.path.join(data_root, 'annotations'), exist_ok=True)
    with open(os.path.join(data_root, 'annotations', f'lvis_v1_{split}.json'), 'w') as f:
        json.dump(data, f)
    return data

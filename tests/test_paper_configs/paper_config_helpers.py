"""What the paper-config tests share: tiny diffusers checkpoints written with ``save_pretrained`` in
the folder layout the configs read, a few ADE20K images in the real ADEChallengeData2016 tree, the
``--cfg-options``-style overrides that shrink a config to CPU size, and a Runner built as
tools/train.py builds it."""
import os
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


def class_blocks(rng, classes, size, border, num_colours):
    """(image, label) of three class blocks on a ``border`` label, the image drawn with one
    random colour a label value (``num_colours`` of them) plus noise: uint8 [H, W, 3], [H, W]."""
    height, width = size
    label = np.full((height, width), border, np.uint8)
    label[4:-4, 4:width // 2] = classes[0]
    label[4:-4, width // 2:-4] = classes[1]
    label[height // 3:2 * height // 3, width // 3:2 * width // 3] = classes[2]
    colours = rng.integers(0, 256, (num_colours, 3))
    image = colours[label] + rng.integers(-20, 20, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_ade20k(data_root, num_train=2, num_val=1, size=(40, 48), seed=0):
    """ADEChallengeData2016 in its real layout: images/{training,validation}/*.jpg and
    annotations/{training,validation}/*.png, uint8 labels 0..150 where 0 is 'unlabelled' (which
    ``reduce_zero_label`` turns into the ignore index 255) and 1..150 the classes. Each image is a
    few class blocks with class-dependent colours, a little unlabelled border included."""
    import mmcv
    rng = np.random.default_rng(seed)
    for split, count in (('training', num_train), ('validation', num_val)):
        for index in range(count):
            classes = rng.choice(np.arange(1, 151), size=3, replace=False)
            image, label = class_blocks(rng, classes, size, border=0, num_colours=151)
            name = f'ADE_{split[:5]}_{index:08d}'
            mmcv.imwrite(image, osp.join(data_root, 'images', split, f'{name}.jpg'))
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
    for index in range(num_train):
        classes = rng.choice(np.arange(171), size=3, replace=False)
        image, label = class_blocks(rng, classes, size, border=255, num_colours=256)
        name = f'{index + 1:012d}'
        mmcv.imwrite(image, osp.join(data_root, 'images', 'train2017', f'{name}.jpg'))
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


def random_boxes_image(rng, size, count):
    """(image, boxes): ``count`` random boxes [x, y, w, h] (floats, 10 px to half the image a
    side) and an image of ``size`` (h, w) with each box filled in a random colour."""
    height, width = size
    boxes = []
    for _ in range(count):
        w, h = int(rng.integers(10, width // 2)), int(rng.integers(10, height // 2))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        boxes.append([float(x), float(y), float(w), float(h)])
    colours = [rng.integers(100, 256, 3) for _ in boxes]
    image = rng.integers(0, 60, (height, width, 3))
    for (x, y, w, h), colour in zip(boxes, colours):
        image[int(y):int(y + h), int(x):int(x + w)] = colour
    return np.clip(image, 0, 255).astype(np.uint8), boxes


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
        image, boxes = random_boxes_image(rng, size, len(classes))
        mmcv.imwrite(image, os.path.join(data_root, f'{split}{year}', file_name))
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
        image, boxes = random_boxes_image(rng, size, len(classes))
        mmcv.imwrite(image, os.path.join(data_root, f'{split}2017', file_name))
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


# NYUv2 scenes of the common (BTS) layout: (folder under sync/, scene class) for training and the
# class folders of official_splits/test.
NYU_TRAIN_SCENES = (('kitchen_0028b', 'kitchen'), ('living_room_0038', 'living_room'))
NYU_TEST_SCENES = ('bathroom', )
NYU_SIZE = (480, 640)


def write_nyuv2(data_root, seed=0):
    """NYUv2 in the common layout of the depth literature: ``sync/<scene>_<id>/rgb_*.jpg`` and
    ``sync_depth_*.png`` for training, ``official_splits/test/<scene>/`` for test, listed by
    ``nyudepthv2_{train,test}_files_with_gt.txt`` (``<rgb> <depth> <focal>`` per line, training
    paths with a leading '/'; one training line without ground truth, ``None``, as in the real
    list). 480 x 640 images; uint16 millimetre depth: a floor ramp, a box nearer than it, a few
    missing (0) pixels. Returns {relative depth path: depth in metres} of the test images."""
    import mmcv
    rng = np.random.default_rng(seed)
    height, width = NYU_SIZE

    def write_pair(folder, index):
        rows = np.linspace(0.8, 9.5, height)[:, None].repeat(width, 1)
        depth = rows.copy()
        top, left = rng.integers(60, 300), rng.integers(60, 400)
        depth[top:top + 120, left:left + 160] = rng.uniform(1.0, 3.0)
        depth[:4, :] = 0.0  # no Kinect return
        image = np.stack([255 * depth / 10, 255 - 255 * depth / 10, np.full_like(depth, 90)], -1)
        image = np.clip(image + rng.integers(-15, 15, image.shape), 0, 255).astype(np.uint8)
        rgb, png = f'{folder}/rgb_{index:05d}.jpg', f'{folder}/sync_depth_{index:05d}.png'
        return rgb, png, image, np.rint(depth * 1000).astype(np.uint16)

    lines = []
    for folder, _ in NYU_TRAIN_SCENES:
        rgb, png, image, depth = write_pair(folder, 45)
        mmcv.imwrite(image, osp.join(data_root, 'sync', rgb))
        mmcv.imwrite(depth, osp.join(data_root, 'sync', png))
        lines.append(f'/{rgb} /{png} 518.8579')
    lines.append(f'/{NYU_TRAIN_SCENES[0][0]}/rgb_00046.jpg None 518.8579')
    with open(osp.join(data_root, 'nyudepthv2_train_files_with_gt.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    test_lines, test_depths = [], {}
    for folder in NYU_TEST_SCENES:
        rgb, png, image, depth = write_pair(folder, 7)
        mmcv.imwrite(image, osp.join(data_root, 'official_splits', 'test', rgb))
        mmcv.imwrite(depth, osp.join(data_root, 'official_splits', 'test', png))
        test_lines.append(f'{rgb} {png} 518.8579')
        test_depths[png] = depth.astype(np.float64) / 1000
    with open(osp.join(data_root, 'nyudepthv2_test_files_with_gt.txt'), 'w') as f:
        f.write('\n'.join(test_lines) + '\n')
    return test_depths


def _write_class_images(paths_labels, size=(40, 48), seed=0):
    """Small images whose colour depends on the label, written at each path."""
    import mmcv
    rng = np.random.default_rng(seed)
    for path, label in paths_labels:
        colour = np.array([(37 * label) % 256, (91 * label) % 256, (151 * label) % 256])
        image = colour + rng.integers(-20, 20, (*size, 3))
        mmcv.imwrite(np.clip(image, 0, 255).astype(np.uint8), path)


def write_cub(data_root, num_train=2, num_test=1):
    """CUB-200-2011 as the official archive unpacks (what mmpretrain's CUB reads): images/<class
    folder>/*.jpg, images.txt and image_class_labels.txt (1-based ids), train_test_split.txt (1 =
    train), classes.txt. Returns the labels (0-based) of the training images."""
    labels = [3 * i + 1 for i in range(num_train + num_test)]
    lines = dict(images=[], labels=[], split=[])
    items = []
    for index, label in enumerate(labels):
        relative = f'{label + 1:03d}.Bird_{label + 1}/Bird_{label + 1}_{index:04d}.jpg'
        items.append((osp.join(data_root, 'images', relative), label))
        lines['images'].append(f'{index + 1} {relative}')
        lines['labels'].append(f'{index + 1} {label + 1}')
        lines['split'].append(f'{index + 1} {int(index < num_train)}')
    _write_class_images(items)
    for name, key in (('images.txt', 'images'), ('image_class_labels.txt', 'labels'),
                      ('train_test_split.txt', 'split')):
        with open(osp.join(data_root, name), 'w') as f:
            f.write('\n'.join(lines[key]) + '\n')
    with open(osp.join(data_root, 'classes.txt'), 'w') as f:
        f.write('\n'.join(f'{i + 1} {i + 1:03d}.Bird_{i + 1}' for i in range(200)) + '\n')
    return labels[:num_train]


def write_imagenet_train(data_root, labels=(0, 7)):
    """ImageNet-1k's training split as mmpretrain's ImageNet reads it: train/<wnid>/*.JPEG listed
    by meta/train.txt (``<wnid>/<file> <label>``)."""
    lines, items = [], []
    for index, label in enumerate(labels):
        relative = f'n{label:08d}/n{label:08d}_{index}.JPEG'
        items.append((osp.join(data_root, 'train', relative), label))
        lines.append(f'{relative} {label}')
    _write_class_images(items, seed=1)
    os.makedirs(osp.join(data_root, 'meta'), exist_ok=True)
    with open(osp.join(data_root, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def write_objectnet(data_root):
    """objectnet-1.0 as released: images/<folder>/*.png and mappings/ (folder -> ObjectNet name;
    ObjectNet name -> ImageNet names for the classes that overlap ImageNet-1k). Three folders, two
    of them overlapping ImageNet. Returns {ObjectNet name: number of images} of the overlap."""
    import json
    folders = {'alarm_clock': 'Alarm clock', 'banana': 'Banana', 'bath_towel_rack': 'Towel rack'}
    overlap = {'Alarm clock': 'analog clock; digital clock', 'Banana': 'banana'}
    counts = {'alarm_clock': 2, 'banana': 1, 'bath_towel_rack': 1}
    items = []
    for label, (folder, count) in enumerate(counts.items()):
        items += [(osp.join(data_root, 'images', folder, f'{folder}_{i}.png'), label)
                  for i in range(count)]
    _write_class_images(items, size=(50, 60), seed=2)
    os.makedirs(osp.join(data_root, 'mappings'), exist_ok=True)
    with open(osp.join(data_root, 'mappings', 'folder_to_objectnet_name.json'), 'w') as f:
        json.dump(folders, f)
    with open(osp.join(data_root, 'mappings', 'objectnet_to_imagenet_1k.json'), 'w') as f:
        json.dump(overlap, f)
    return {folders[k]: counts[k] for k in folders if folders[k] in overlap}


WNIDS = ['n01440764', 'n01443537', 'n01484850']


def write_imagenet(root, per_class=2, size=(40, 36), seed=0):
    """A few JPEGs of 3 classes in mmpretrain's ImageNet layout, labels 0, 1, 2 in meta/*.txt."""
    import mmcv
    rng = np.random.default_rng(seed)
    lines = {'train': [], 'val': []}
    for label, wnid in enumerate(WNIDS):
        colour = rng.integers(0, 256, 3)
        for k in range(per_class):
            image = np.clip(colour + rng.integers(-30, 30, (*size, 3)), 0, 255).astype(np.uint8)
            name = f'{wnid}/{wnid}_{k}.JPEG'
            mmcv.imwrite(image, osp.join(root, 'train', name))
            lines['train'].append(f'{name} {label}')
            val_name = f'ILSVRC2012_val_{label * per_class + k + 1:08d}.JPEG'
            mmcv.imwrite(image[::-1].copy(), osp.join(root, 'val', val_name))
            lines['val'].append(f'{val_name} {label}')
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, split_lines in lines.items():
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(split_lines) + '\n')


def shrink_generation_config(cfg: Config, tmp_path, extra=None) -> Config:
    """A generation config (an ImageNet-style classifier around GenRep with a GenerationEvalHook)
    at CPU size, as --cfg-options would make it: CROP-pixel images, batches of 2, two
    iterations, no workers; the hook draws 3 samples of 2 steps for each of its classes (classes
    0 and 2 where the config names none) and scores them in MobileNetV2 space against 6 training
    images."""
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=CROP, edge='short', backend='pillow',
             interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=CROP),
        dict(type='PackInputs'),
    ]
    options = {
        'train_dataloader.batch_size': 2,
        'train_dataloader.dataset.pipeline': pipeline[:3] + [
            dict(type='RandomFlip', prob=0.5, direction='horizontal'), pipeline[3]],
        'test_dataloader.dataset.pipeline': pipeline,
        'val_dataloader.dataset.pipeline': pipeline,
        'train_cfg.max_iters': 2,
        'default_hooks.logger.interval': 1,
        'randomness.seed': 0,
    }
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options[f'{loader}.num_workers'] = 0
        options[f'{loader}.persistent_workers'] = False
    cfg.merge_from_dict(options)
    for hook in cfg.custom_hooks:
        if hook['type'] == 'genrep.GenerationEvalHook':
            hook.update(classes=hook.get('classes') or [0, 2], samples_per_class=3, num_steps=2,
                        batch_size=6)
            hook['metric'].update(features=['mobilenet_v2'], num_real=6, prc_num_real=6,
                                  is_splits=2, real_stats_dir=str(tmp_path / 'real_stats'),
                                  inception_weights=None)
            hook['metric']['real_dataset']['pipeline'] = pipeline
    cfg.merge_from_dict(extra or {})
    return cfg

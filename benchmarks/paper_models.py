"""What benchmarks/paper_cost.py and benchmarks/paper_smoke.py share about the paper configs: which
configs there are and how they group into stages, which checkpoint family each reads, the training
input each sees, and one synthetic training batch of its task (the data samples its heads read,
in the toolkits' own types), so that a config's model runs without its dataset.
"""
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import genrep  # noqa: F401,E402  (applies genrep.compat before any OpenMMLab or diffusers import)
from genrep.utils.files import load_script  # noqa: E402

# (group, [configs]): the paper configs, each group a perception (or generation) config and its
# GenRep stages, side by side in the cost card.
GROUPS: List[Tuple[str, List[str]]] = [
    ('ADE20K, SD 1.5 + Mask2Former',
     ['ade20k_ldm', 'ade20k_ldm_genrep_stage1', 'ade20k_ldm_genrep_stage2']),
    ('NYUv2 depth, SD 1.5', ['nyuv2_ldm', 'nyuv2_ldm_genrep_stage1', 'nyuv2_ldm_genrep_stage2']),
    ('OV-COCO, SD 1.5 + Faster R-CNN', ['ov_coco_ldm', 'ov_coco_ldm_genrep_stage1']),
    ('OV-COCO, SD 1.5 + DINO', ['ov_coco_dino_ldm', 'ov_coco_dino_ldm_genrep_stage1']),
    ('OV-LVIS, SD 1.5 + Faster R-CNN', ['ov_lvis_ldm', 'ov_lvis_ldm_genrep_stage1']),
    ('ImageNet 256, DiT-XL/2',
     ['imagenet256_dit', 'imagenet256_dit_genrep_stage1', 'imagenet256_dit_genrep_stage2']),
    ('ImageNet 256, LDM-8',
     ['imagenet256_ldm', 'imagenet256_ldm_genrep_stage1', 'imagenet256_ldm_genrep_stage2']),
    ('CelebA-HQ 256, LDM-4',
     ['celebahq256_ldm', 'celebahq256_ldm_genrep_stage1', 'celebahq256_ldm_genrep_stage2']),
    ('Perception only, SD 1.5', ['cocostuff_ov_ade20k_ldm', 'cub_ldm', 'objectnet_ldm']),
    ('Perception only, DiT-XL/2-512', ['ade20k_dit', 'ov_coco_dit', 'ov_lvis_dit']),
    ('Generation only', ['lsun_church256_ldm', 'imagenet256_dit_fsdp']),
]
# GPUs the configs' batch sizes are written for (their comments: "x 8 GPUs").
NUM_GPUS = 8
# A COCO image is typically 640 x 480; mmdet's Resize to (1333, 800) keeping the ratio gives
# 1067 x 800, padded to the configs' multiple of 64.
COCO_TRAIN_SHAPE = (832, 1088)


def config_path(name: str) -> str:
    return osp.join(ROOT, 'configs', 'genrep', f'{name}.py')


def load_config(name: str):
    from mmengine.config import Config
    return Config.fromfile(config_path(name))


def random_checkpoints():
    """tools/analysis_tools/make_random_checkpoints.py as a module."""
    return load_script(osp.join(ROOT, 'tools', 'analysis_tools', 'make_random_checkpoints.py'))


def is_genrep(cfg) -> bool:
    return cfg.model.get('type') == 'genrep.GenRep'


def perception_cfg(cfg) -> dict:
    """The perception model's config (GenRep's ``perception`` or the model itself)."""
    return cfg.model.perception if is_genrep(cfg) else cfg.model


def task_of(cfg) -> str:
    """'segmentation', 'detection', 'query_detection', 'depth' or 'classification'."""
    model_type = perception_cfg(cfg).type.split('.')[-1]
    if model_type == 'EncoderDecoder':
        return 'segmentation'
    if model_type == 'DepthEstimator':
        return 'depth'
    if model_type in ('DINO', 'DeformableDETR', 'DETR'):
        return 'query_detection'
    if model_type in ('FasterRCNN', 'TwoStageDetector', 'MaskRCNN'):
        return 'detection'
    return 'classification'


def family_of(cfg) -> str:
    """The checkpoint family (folder name) the config's denoiser reads."""
    backbone = perception_cfg(cfg).backbone
    return osp.basename(osp.normpath(backbone.denoiser.pretrained))


def _train_pipeline(cfg) -> list:
    dataset = cfg.train_dataloader.dataset
    while 'pipeline' not in dataset and 'dataset' in dataset:  # wrappers
        dataset = dataset.dataset
    return dataset.get('pipeline', [])


def train_input_shape(cfg) -> Tuple[int, int]:
    """(height, width) of one training input as the model sees it (after the pipeline and the
    data preprocessor's padding)."""
    task = task_of(cfg)
    if task in ('detection', 'query_detection'):
        pad = perception_cfg(cfg).data_preprocessor.get('pad_size_divisor', 1)
        for transform in _train_pipeline(cfg):
            if transform.get('type') == 'Resize' and transform.get('scale') == (pad, pad):
                return pad, pad  # the DiT detectors: everything fits one fixed square
        return COCO_TRAIN_SHAPE
    if 'crop_size' in cfg and task in ('segmentation', 'depth'):
        return tuple(cfg.crop_size)
    for transform in reversed(_train_pipeline(cfg)):
        for key in ('crop_size', 'scale'):
            value = transform.get(key)
            if value is not None and transform['type'] in ('RandomCrop', 'CenterCrop',
                                                           'RandomResizedCrop', 'Resize'):
                return (value, value) if isinstance(value, int) else tuple(value)
    raise ValueError(f'train_input_shape: no crop or resize found in the training pipeline')


def global_batch(cfg) -> int:
    return cfg.train_dataloader.batch_size * NUM_GPUS


# Training-set sizes of the epoch-based configs' datasets (CUB-200-2011's train split,
# ImageNet-1k's train split).
DATASET_SIZES = dict(CUB=5994, ImageNet=1281167)


def max_iters(cfg) -> int:
    """Iterations of the schedule; an epoch-based one: epochs x ceil(dataset / global batch)."""
    loop = cfg.train_cfg
    if 'max_iters' in loop:
        return loop.max_iters
    dataset = cfg.train_dataloader.dataset.type.split('.')[-1]
    if 'max_epochs' in loop and dataset in DATASET_SIZES:
        return loop.max_epochs * -(-DATASET_SIZES[dataset] // global_batch(cfg))
    raise ValueError(f'max_iters: neither max_iters nor a known dataset size ({dataset})')


def num_classes_of(cfg) -> int:
    """The task's class count: the denoiser's class table where it has one (the LDM UNets'),
    else the task head's (``num_classes``, or the count of its ``class_names``: a DiT reads its
    features with the null class and has no table of the task's classes), else ImageNet's 1000
    (the generation configs)."""
    model = perception_cfg(cfg)
    num_classes = model.backbone.denoiser.get('num_classes')
    if num_classes:
        return num_classes
    roi_head = model.get('roi_head') or {}
    for head in (model.get('decode_head'), model.get('head'), model.get('bbox_head'),
                 roi_head.get('bbox_head')):
        if not head:
            continue
        if head.get('class_names') is not None:
            return vocabulary_size(head['class_names'])
        if head.get('num_classes'):
            return head['num_classes']
    return 1000


def stage_of(cfg) -> Optional[int]:
    return cfg.model.get('stage', 1) if is_genrep(cfg) else None


# -- a synthetic batch ----------------------------------------------------------------------------
def synthetic_batch(cfg, shape: Tuple[int, int], batch: int = 1, num_objects: int = 7,
                    seed: int = 0) -> Tuple['torch.Tensor', list]:
    """(inputs [B, 3, H, W] in the model's normalised range, data samples) of one training batch:
    class blocks for segmentation (8 classes an image, an ADE20K crop's usual count), depth maps
    and a scene class for depth, ``num_objects`` boxes for detection (COCO's 7.3 a training
    image), a label for classification. Inputs already normalised: call the model's ``loss``
    (or ``train_step`` with ``_skip_preprocess``-free data, see paper_smoke)."""
    import torch
    from mmengine.structures import InstanceData, PixelData
    g = torch.Generator().manual_seed(seed)
    height, width = shape
    inputs = torch.rand(batch, 3, height, width, generator=g) * 2 - 1
    task = task_of(cfg)
    num_classes = num_classes_of(cfg)
    samples = []
    meta = dict(img_shape=(height, width), pad_shape=(height, width), ori_shape=(height, width),
                batch_input_shape=(height, width), scale_factor=(1.0, 1.0), flip=False,
                img_path='synthetic.jpg', sample_idx=0)
    for index in range(batch):
        meta = dict(meta, sample_idx=index)
        if task in ('segmentation', 'depth'):
            from mmseg.structures import SegDataSample
            sample = SegDataSample(metainfo=meta)
            classes = torch.randperm(num_classes, generator=g)[:8]
            label = classes[torch.arange(height * width).view(height, width) * 8 //
                            (height * width)]
            if task == 'segmentation':
                sample.gt_sem_seg = PixelData(data=label[None].long())
            else:
                sample.gt_depth_map = PixelData(data=torch.rand(1, height, width, generator=g) * 9
                                                + 0.5)
                sample.set_metainfo(dict(category_id=int(classes[0])))
        elif task in ('detection', 'query_detection'):
            from mmdet.structures import DetDataSample
            sample = DetDataSample(metainfo=meta)
            xy = torch.rand(num_objects, 2, generator=g) * torch.tensor([width, height]) * 0.6
            wh = torch.rand(num_objects, 2, generator=g) * torch.tensor([width, height]) * 0.35 + 16
            sample.gt_instances = InstanceData(
                bboxes=torch.cat([xy, xy + wh], 1),
                labels=torch.randint(num_classes, (num_objects, ), generator=g))
            sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                                    labels=torch.zeros(0, dtype=torch.long))
        else:
            from mmpretrain.structures import DataSample
            sample = DataSample(metainfo=meta).set_gt_label(
                int(torch.randint(num_classes, (1, ), generator=g)))
        samples.append(sample)
    return inputs, samples


# Vocabularies read from a dataset file that is not here: LVIS v1's common and frequent
# categories (the configs' comment: 461 + 405), what only shapes a class table.
VOCABULARY_SIZES = {('genrep.LVISV1VocabularyDataset', ('c', 'f')): 866}


def vocabulary_size(class_names) -> int:
    from genrep.models.heads.vocabulary import dataset_class_names
    try:
        return len(dataset_class_names(class_names))
    except FileNotFoundError:
        key = (class_names.get('type'), tuple(class_names.get('frequencies', ())))
        if key not in VOCABULARY_SIZES:
            raise
        return VOCABULARY_SIZES[key]


def with_random_checkpoint_configs(model_cfg: dict) -> dict:
    """A copy of a perception model config whose backbone builds ``from_config`` with the
    family's real-size configs (no folder read: random weights on whatever device is current)
    and without the class prompts' text encoder (the class table's shape kept: SD's 77 tokens a
    class)."""
    import copy
    family_configs = random_checkpoints().component_configs
    cfg = copy.deepcopy(model_cfg)
    backbone = cfg['backbone']
    family = osp.basename(osp.normpath(backbone['denoiser']['pretrained']))
    components = family_configs(family)
    denoiser = backbone['denoiser']
    denoiser['config'] = dict(components[denoiser.pop('subfolder')][1])
    denoiser.pop('pretrained')
    denoiser.pop('class_embedding', None)  # LDM's class table file: one context token a class
    if backbone.get('class_prompts') is not None:
        if denoiser.get('num_classes') is None:  # the class prompts' names give the count
            denoiser['num_classes'] = vocabulary_size(backbone['class_prompts']['class_names'])
        backbone['class_prompts'] = None
        denoiser['num_tokens'] = random_checkpoints().CLIP_MAX_LENGTH
    if backbone.get('vae') is not None:
        vae = backbone['vae']
        vae['config'] = dict(components[vae.pop('subfolder')][1])
        vae.pop('pretrained')
    return cfg


def point_at_cache(value, cache: str):
    """Every 'checkpoints/<name>...' string of a config -> the random checkpoints' cache."""
    if isinstance(value, dict):
        return {k: point_at_cache(v, cache) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(point_at_cache(v, cache) for v in value)
    if isinstance(value, str) and value.startswith('checkpoints/'):
        return osp.join(cache, value[len('checkpoints/'):])
    return value


def checkpoints_read(value) -> List[str]:
    """The checkpoint folder names ('checkpoints/<name>') a config reads."""
    if isinstance(value, dict):
        return sorted({n for v in value.values() for n in checkpoints_read(v)})
    if isinstance(value, (list, tuple)):
        return sorted({n for v in value for n in checkpoints_read(v)})
    if isinstance(value, str) and value.startswith('checkpoints/'):
        return [value[len('checkpoints/'):].split('/')[0]]
    return []


def ensure_checkpoints(names: List[str], cache: str) -> None:
    """Writes the random checkpoints ``names`` (of FAMILIES) missing from ``cache``, each in
    its own process (a real-size model's memory goes with it)."""
    import subprocess
    module = random_checkpoints()
    for name in names:
        if name in module.FAMILIES and not osp.isfile(osp.join(cache, name, module.DONE)):
            print(f'writing the random checkpoint {name} ...', flush=True)
            subprocess.run([sys.executable, module.__file__, '--out', cache, '--only', name],
                           check=True)


def checkpoint_families(names: List[str]) -> Dict[str, List[str]]:
    """family -> configs reading it."""
    families: Dict[str, List[str]] = {}
    for name in names:
        families.setdefault(family_of(load_config(name)), []).append(name)
    return families

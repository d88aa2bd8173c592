"""The generative pretraining of the main job's denoiser (`make pretrain`): its EMA, its resume,
its export to a diffusers folder and the files the repository ships from it."""
import hashlib
import os.path as osp

import pytest
import torch
from conftest import REPO_ROOT, load_tool

from genrep.apis import init_model
from genrep.utils.files import file_sha256

TINY = osp.join(REPO_ROOT, 'tests/data/configs/fmnist_genrep_tiny_pretrain.py')
PRETRAIN = osp.join(REPO_ROOT, 'configs/genrep/fmnist_genrep_pretrain.py')
SUMS = osp.join(REPO_ROOT, 'checkpoints/SHA256SUMS')
DENOISER_PREFIX = 'perception.backbone.denoiser.model.'
TOOL = 'tools/model_converters/export_denoiser.py'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A checkpoint of the tiny pretraining model as mmengine writes one."""
    torch.manual_seed(0)
    model = init_model(TINY)
    path = tmp_path_factory.mktemp('ckpt') / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1, iter=2), state_dict=model.state_dict()), path)
    return path


def test_export_round_trip_into_the_main_jobs_model(checkpoint, tmp_path):
    """The exported folder holds the checkpoint's denoiser weights exactly, and a config that
    names it as its pretrained denoiser (what the main job does) builds with those weights."""
    tool = load_tool(TOOL)
    weights_file = tool.export_denoiser(TINY, str(checkpoint), str(tmp_path / 'denoiser'))
    expected = {key[len(DENOISER_PREFIX):]: value for key, value in
                torch.load(checkpoint, weights_only=True)['state_dict'].items()
                if key.startswith(DENOISER_PREFIX)}
    torch.manual_seed(1)  # other initial weights everywhere else
    model = init_model(TINY, cfg_options={'model.perception.backbone.denoiser': dict(
        _delete_=True, type='UNet2DDenoiser', pretrained=str(tmp_path / 'denoiser'))})
    built = model.perception.backbone.denoiser.model.state_dict()
    assert built.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(built[key], value), key
    with open(weights_file, 'rb') as f:
        assert file_sha256(weights_file) == hashlib.sha256(f.read()).hexdigest()


def test_export_refuses_non_finite_weights(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    key = DENOISER_PREFIX + 'conv_in.weight'
    state['state_dict'][key][0, 0, 0, 0] = float('nan')
    bad = tmp_path / 'nan.pth'
    torch.save(state, bad)
    with pytest.raises(ValueError, match='conv_in.weight holds NaN'):
        load_tool(TOOL).export_denoiser(TINY, str(bad), str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()


def test_pretraining_config_keeps_a_weight_ema():
    """The shipped schedule: EMA of the weights after the warm-up, label dropout for guidance, a
    cosine decay over every epoch."""
    from mmengine.config import Config
    cfg = Config.fromfile(PRETRAIN)
    ema = [hook for hook in cfg.custom_hooks if hook['type'] == 'EMAHook']
    assert len(ema) == 1 and ema[0]['begin_iter'] == cfg.param_scheduler[0]['end']
    assert cfg.model.stage == 0 and cfg.model.label_dropout == 0.1
    assert cfg.param_scheduler[1]['end'] == cfg.train_cfg.max_epochs


@pytest.mark.slow
def test_pretraining_resumes_exactly_with_its_ema(tmp_path):
    """A pretraining run resumed inside its second epoch from a checkpoint outside its work dir
    (how the shipped pretraining was continued across sessions from a committed checkpoint)
    ends at the uninterrupted run's weights and EMA weights."""
    import shutil

    from data_fixtures import write_fashion_mnist
    from test_reliability.tiny_runs import (EPOCHS, ITERS_PER_EPOCH, TOTAL, checkpoint_after,
                                            max_abs_diff, train)
    data = write_fashion_mnist(tmp_path / 'data', num_train=16, num_test=8)
    train(TINY, data, tmp_path / 'whole')
    final = f'epoch_{EPOCHS}.pth'
    reference = torch.load(tmp_path / 'whole' / final, weights_only=True)
    progress = tmp_path / 'progress.pth'
    # The first iteration of the second epoch.
    shutil.copy(checkpoint_after(str(tmp_path / 'whole'), ITERS_PER_EPOCH + 1), progress)
    train(TINY, data, tmp_path / 'resumed', resume_from=str(progress))
    resumed = torch.load(tmp_path / 'resumed' / final, weights_only=True)
    assert resumed['meta']['iter'] == TOTAL
    # state_dict holds the EMA weights (EMAHook swaps them in), ema_state_dict the raw ones.
    assert max_abs_diff(resumed['state_dict'], reference['state_dict']) <= 1e-6
    assert max_abs_diff(resumed['ema_state_dict'], reference['ema_state_dict']) <= 1e-6
    assert not torch.equal(reference['state_dict'][DENOISER_PREFIX + 'conv_in.weight'],
                           reference['ema_state_dict']['module.' + DENOISER_PREFIX +
                                                       'conv_in.weight'])


def shipped_files():
    """(sha256, path) of each line of checkpoints/SHA256SUMS (`sha256sum` format)."""
    if not osp.isfile(SUMS):
        return []
    with open(SUMS) as f:
        return [tuple(line.split(maxsplit=1)) for line in f if line.strip()]


def shipped_digests() -> dict:
    """{path under checkpoints/: sha256} of checkpoints/SHA256SUMS."""
    return {name.strip().lstrip('*'): digest for digest, name in shipped_files()}


@pytest.mark.parametrize('digest,name', shipped_files())
def test_shipped_files_match_their_sha256(digest, name):
    path = osp.join(REPO_ROOT, 'checkpoints', name.strip().lstrip('*'))
    assert osp.isfile(path), f'{path} is listed in checkpoints/SHA256SUMS but absent'
    with open(path, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest, path


SHIPPED_DENOISER = osp.join(REPO_ROOT, 'checkpoints/fmnist_denoiser')
MAIN_STAGE1 = osp.join(REPO_ROOT, 'configs/genrep/fmnist_genrep_stage1.py')


def test_shipped_denoiser_is_listed_and_loads_into_the_main_jobs_model():
    """The shipped EMA weights are listed in SHA256SUMS with their digest, and the main job's
    model built on them holds them exactly (no weight left at its random initialisation)."""
    from safetensors.torch import load_file
    weights = osp.join(SHIPPED_DENOISER, 'diffusion_pytorch_model.safetensors')
    assert shipped_digests().get('fmnist_denoiser/diffusion_pytorch_model.safetensors') == \
        file_sha256(weights)
    expected = load_file(weights)
    torch.manual_seed(1)
    model = init_model(MAIN_STAGE1, cfg_options={'model.perception.backbone.denoiser': dict(
        _delete_=True, type='UNet2DDenoiser', pretrained=SHIPPED_DENOISER)})
    built = model.perception.backbone.denoiser.model.state_dict()
    assert built.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(built[key], value), key


# The model zoo's trained weights (docs/model_zoo.md): the main job's stage 2, exported without its
# semantic EMA copy, and the perception-only baseline from the shipped denoiser, seed 0 each, with
# their measured test top-1 (the fresh-clone run and the fair comparison, docs/results.md).
ZOO = [
    ('configs/genrep/fmnist_genrep_stage2.py', 'fmnist_genrep/fmnist_genrep_stage2.safetensors',
     90.59),
    ('configs/genrep/fmnist_unet_cls_pretrained.py',
     'fmnist_unet_cls_pretrained/fmnist_unet_cls_pretrained.safetensors', None),
]


@pytest.mark.parametrize('config,name,measured', ZOO)
def test_zoo_weights_are_listed_and_classify_the_test_images(config, name, measured):
    """Each zoo file is listed with its sha256, loads into its config's model with its class names
    (init_model, as the demos do), and classifies the first 1,000 test images as its run did: at
    least 88% (the measured top-1 of its 10,000, when given, within 3 points)."""
    from conftest import require_debian_data
    path = osp.join(REPO_ROOT, 'checkpoints', name)
    assert shipped_digests().get(name) == file_sha256(path)
    model = init_model(osp.join(REPO_ROOT, config), path)
    classes = model.dataset_meta['classes']
    assert len(classes) == 10 and 'Ankle boot' in classes
    dataset_cfg = model.cfg.test_dataloader.dataset
    require_debian_data(dataset_cfg.data_root)
    from mmengine.registry import DATASETS, DefaultScope
    with DefaultScope.overwrite_default_scope(model.cfg.get('default_scope')):
        dataset = DATASETS.build(dict(dataset_cfg, indices=1000))
    correct = 0
    with torch.no_grad():
        for start in range(0, 1000, 250):
            items = [dataset[i] for i in range(start, start + 250)]
            batch = dict(inputs=[item['inputs'] for item in items],
                         data_samples=[item['data_samples'] for item in items])
            for sample in model.test_step(batch):
                correct += int(sample.pred_label.item() == sample.gt_label.item())
    top1 = correct / 10
    assert top1 >= 88.0, top1
    if measured is not None:
        assert abs(top1 - measured) <= 3.0, (top1, measured)


@pytest.mark.slow  # 20,000 denoiser evaluations: about 2 min of one core
def test_main_jobs_teacher_classifies_with_the_shipped_weights():
    """Issue 26's target at the main job's own teacher settings: the stage-1 config's posterior (at
    most 20 denoiser evaluations a class) on the shipped denoiser classifies 100 seeded test
    images at 80% top-1 or better (87.6% measured on 1,000, docs/pretraining.md; the 4-evaluation
    forward-noised reading of the release before scored 76.7%)."""
    from conftest import require_debian_data

    from genrep.apis.teacher import split_image_indices, teacher_log_likelihoods
    model = init_model(MAIN_STAGE1, cfg_options={'model.perception.backbone.denoiser': dict(
        _delete_=True, type='UNet2DDenoiser', pretrained=SHIPPED_DENOISER)})
    assert model.posterior.num_evaluations() <= 20
    require_debian_data(model.cfg.test_dataloader.dataset.data_root)
    dataset, indices = split_image_indices(model, 'test', 100, seed=0)
    scores = teacher_log_likelihoods(model, dataset, indices, noise_seed=1, verbose=False)
    top1 = (scores['log_lik'].argmax(1) == scores['labels']).float().mean().item()
    assert top1 >= 0.80, top1

"""The paper configs against their sources (docs/fidelity.md): models built from folders that
tools/model_converters/ldm_to_diffusers.py converts from checkpoints in latent-diffusion's own
layout read the class embedder and the stored scale factor; OV-LVIS trains on the 866-name
vocabulary with mmdet's repeat-factor sampling; the weight EMA is what sampling and testing
read; COCO-Stuff trains 80k iterations; the published protocols are offered by name."""
import math
import os

import pytest
import torch
from mmengine.config import Config
from paper_config_helpers import (CROP, build_runner, config_path, shrink_generation_config,
                                  write_dit_checkpoint, write_imagenet, write_lvis)
from upstream_layouts import CIN_UNET, LSUN_UNET, ldm_yaml, upstream_ldm, write_ldm

from conftest import load_tool


def build_model(cfg):
    from mmengine.registry import init_default_scope

    from genrep.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


# -- converted checkpoints read by the built models ---------------------------------------------

def test_imagenet256_ldm_reads_the_converted_class_embedder(tmp_path, monkeypatch):
    """cin-ldm-vq-f8 converted from its own layout: the built GenRep's denoiser conditions class y
    on row y of the ClassEmbedder table, as LDM does, and encodes with the VQ first stage at
    scale 1."""
    monkeypatch.chdir(tmp_path)
    converter = load_tool('tools/model_converters/ldm_to_diffusers.py')
    cond = dict(target='ldm.modules.encoders.modules.ClassEmbedder',
                params=dict(embed_dim=16, key='class_label'))
    config = ldm_yaml(CIN_UNET, 'vq', cond)
    table = torch.randn(1000, 16)
    state, unet, _ = upstream_ldm(converter, config,
                                  extra={'cond_stage_model.embedding.weight': table})
    os.makedirs('source')
    converter.main([*write_ldm(tmp_path / 'source', config, state), 'checkpoints/ldm-cin256-f8'])

    cfg = Config.fromfile(config_path('imagenet256_ldm.py'))
    cfg.merge_from_dict({'model.perception.head.in_channels': 64,
                         'model.perception.backbone.out_indices': (0, 1)})
    model = build_model(cfg).eval()
    denoiser = model.denoiser
    y = torch.tensor([0, 7, 999])
    torch.testing.assert_close(denoiser.class_embeddings(y)[:, 0], table[y])
    x, t = torch.randn(3, 4, 8, 8), torch.tensor([10, 500, 990])
    with torch.no_grad():
        torch.testing.assert_close(denoiser(x, t, y),
                                   unet(x, t, encoder_hidden_states=table[y][:, None]).sample)
    assert type(model.backbone.vae).__name__ == 'VQModel'
    assert model.backbone.vae.config.scaling_factor == 1.0


def test_lsun_church256_ldm_reads_the_checkpoints_scale_factor(tmp_path, monkeypatch):
    """lsun_churches-ldm-kl-8 (scale_by_std: the scale_factor buffer in the .ckpt) converted: the
    built model encodes to the VAE mean times that buffer, with 8 heads in every attention
    layer; the config states no scale of its own."""
    from diffusers.models.attention_processor import Attention
    monkeypatch.chdir(tmp_path)
    converter = load_tool('tools/model_converters/ldm_to_diffusers.py')
    config = ldm_yaml(dict(LSUN_UNET, num_heads=8), 'kl', scale_by_std=True)
    state, _, vae = upstream_ldm(converter, config, extra={'scale_factor': torch.tensor(0.3125)})
    os.makedirs('source')
    converter.main([*write_ldm(tmp_path / 'source', config, state),
                    'checkpoints/ldm-lsun-churches-256'])

    cfg = Config.fromfile(config_path('lsun_church256_ldm.py'))
    assert 'scaling_factor' not in cfg.model.perception.backbone.vae
    cfg.merge_from_dict({'model.perception.head.in_channels': 64,
                         'model.perception.backbone.out_indices': (0, 1, 2)})
    model = build_model(cfg).eval()
    assert model.backbone.vae.config.scaling_factor == 0.3125
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model.backbone.encode(images),
                                   vae.encode(images).latent_dist.mean * 0.3125)
    layers = [m for m in model.denoiser.model.modules() if isinstance(m, Attention)]
    assert layers and all(m.heads == 8 for m in layers)


def test_check_pretrained_refuses_a_folder_that_does_not_fit_the_config(tmp_path, monkeypatch,
                                                                        capsys):
    """tools/model_converters/check_pretrained.py builds the config's model from its folders: a
    conversion whose heads differ from the config's, or a first stage missing a weight, fails
    with the key named; the fitting folder passes."""
    from safetensors.torch import load_file, save_file
    monkeypatch.chdir(tmp_path)
    converter = load_tool('tools/model_converters/ldm_to_diffusers.py')
    tool = load_tool('tools/model_converters/check_pretrained.py')
    config = ldm_yaml(dict(LSUN_UNET, num_heads=4), 'kl', scale_by_std=True)
    state, _, _ = upstream_ldm(converter, config, extra={'scale_factor': torch.tensor(0.25)})
    os.makedirs('source')
    folder = 'checkpoints/ldm-lsun-churches-256'
    converter.main([*write_ldm(tmp_path / 'source', config, state), folder])
    shrink = ['model.perception.head.in_channels=64',
              'model.perception.backbone.out_indices=[0,1,2]']
    lsun = config_path('lsun_church256_ldm.py')

    assert tool.main([lsun, '--cfg-options', *shrink]) == 1  # the config's 8 heads
    assert 'needs num_attention_heads=4' in capsys.readouterr().err
    heads = 'model.perception.backbone.denoiser.num_attention_heads=4'
    assert tool.main([lsun, '--cfg-options', *shrink, heads]) == 0
    weights = f'{folder}/vae/diffusion_pytorch_model.safetensors'
    tensors = load_file(weights)
    del tensors['decoder.conv_in.bias']
    save_file(tensors, weights)
    capsys.readouterr()
    assert tool.main([lsun, '--cfg-options', *shrink, heads]) == 1
    assert 'decoder.conv_in.bias' in capsys.readouterr().err


def test_lsun_church256_ldm_loss_and_schedule_are_the_yamls():
    """lsun_churches-ldm-kl-8.yaml: loss_type l1, LambdaLinearScheduler's 10k warm-up from 1e-6,
    AdamW 5e-5; the L1 is the mean absolute error of the predicted noise, by hand."""
    from tiny_models import unet2d_cfg

    from genrep.diffusion import (DiffusionSchedule, SampleGenerators, UNet2DDenoiser,
                                  training_losses)
    cfg = Config.fromfile(config_path('lsun_church256_ldm.py'))
    assert cfg.model.eps_loss == 'l1'
    assert Config.fromfile(config_path('celebahq256_ldm.py')).model.get('eps_loss', 'mse') == 'mse'
    torch.manual_seed(0)
    denoiser = UNet2DDenoiser(config=unet2d_cfg(num_classes=3)['config'])
    schedule = DiffusionSchedule(dict(num_train_timesteps=20, beta_schedule='linear',
                                      beta_start=1e-3, beta_end=0.2, clip_sample=False))
    x0, labels = torch.rand(3, 1, 16, 16) * 2 - 1, torch.tensor([0, 2, 1])
    got = training_losses(schedule, denoiser, x0, labels, SampleGenerators([1, 2, 3]),
                          denoiser.null_class_id, label_dropout=0.0, eps_loss='l1')
    draws = SampleGenerators([1, 2, 3])
    draws.rand()  # the label dropout's draw
    index = draws.randint(schedule.num_steps)
    noise = draws.randn(x0.shape)
    eps = denoiser(schedule.q_sample(x0, index, noise), schedule.timesteps[index], labels)
    torch.testing.assert_close(got.mse, (eps - noise).abs().mean())
    with pytest.raises(ValueError, match='eps_loss'):
        training_losses(schedule, denoiser, x0, labels, SampleGenerators([1, 2, 3]),
                        denoiser.null_class_id, eps_loss='huber')

    warmup, = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 1e-6, 10000)
    assert cfg.optim_wrapper.optimizer.lr == 5e-5
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.01  # torch AdamW's, as LDM's
    assert cfg.model.schedule.scheduler.beta_end == 0.0155


# -- OV-LVIS: training vocabulary and repeat-factor sampling ------------------------------------

def write_tiny_lvis():
    """Four training images: a common class in one image, a frequent class in all four, a rare
    class in one (removed by lvis_remove_rare.py); LVIS's 1203 categories with ids 1..1203."""
    from mmdet.datasets import LVISV1Dataset
    names = LVISV1Dataset.METAINFO['classes']
    rare, common, frequent = names[0], names[1], names[2]
    frequencies = {rare: 'r', common: 'c', frequent: 'f', names[3]: 'r'}
    images = [[common, frequent], [frequent], [frequent, rare], [frequent]]
    write_lvis('data/lvis_v1', images, frequencies, split='train', size=(48, 64))
    load_tool('tools/dataset_converters/lvis_remove_rare.py').main(['--data-root',
                                                                    'data/lvis_v1'])
    return names, frequencies, images


def test_ov_lvis_trains_on_the_non_rare_vocabulary_with_repeat_factors(tmp_path, monkeypatch):
    from mmengine.registry import init_default_scope

    from genrep.models.heads.vocabulary import dataset_class_names
    from genrep.registry import DATASETS
    monkeypatch.chdir(tmp_path)
    names, frequencies, images = write_tiny_lvis()
    vocabulary = [n for n in names if frequencies.get(n, 'f') != 'r']
    cfg = Config.fromfile(config_path('ov_lvis_ldm.py'))
    wrapper = cfg.train_dataloader.dataset
    assert wrapper.type == 'ClassBalancedDataset' and wrapper.oversample_thr == 1e-3
    # The model's vocabulary, read from the category list alone (no annotation file).
    os.rename('data/lvis_v1/annotations/lvis_v1_train_norare.json', 'moved.json')
    assert dataset_class_names(cfg.model.roi_head.bbox_head.class_names) == vocabulary
    assert cfg.model.backbone.class_prompts.class_names == cfg.model.roi_head.bbox_head.class_names
    os.rename('moved.json', 'data/lvis_v1/annotations/lvis_v1_train_norare.json')

    init_default_scope('mmdet')
    # A threshold that makes this tiny set's common class (1 image in 4) repeat: the same
    # wrapper as the config's 1e-3 on LVIS's 100k images.
    threshold = 0.6
    dataset = DATASETS.build(dict(wrapper, oversample_thr=threshold,
                                  dataset=dict(wrapper.dataset, pipeline=[])))
    inner = dataset.dataset
    assert list(inner.metainfo['classes']) == vocabulary
    labels = [{i['bbox_label'] for i in inner.get_data_info(k)['instances']}
              for k in range(len(inner))]
    expected_labels = [{vocabulary.index(n) for n in image if n in vocabulary}
                       for image in images]
    assert sorted(map(sorted, labels)) == sorted(map(sorted, expected_labels))

    # Repeat-factor sampling (Gupta et al. 2019), as mmdet's ClassBalancedDataset: f_c the
    # fraction of images with class c, r_c = max(1, sqrt(t / f_c)), an image repeated
    # ceil(max_c r_c) times.
    image_count = {c: sum(c in image for image in expected_labels) for c in range(len(vocabulary))}
    repeats = []
    for image in labels:
        factors = [max(1.0, math.sqrt(threshold / (image_count[c] / len(labels)))) for c in image]
        repeats.append(math.ceil(max(factors, default=1.0)))
    assert repeats.count(2) == 1  # the image with the common class
    assert len(dataset) == sum(repeats)
    drawn = [dataset.get_data_info(k)['img_id'] for k in range(len(dataset))]
    for k in range(len(inner)):
        assert drawn.count(inner.get_data_info(k)['img_id']) == repeats[k]


# -- the weight EMA that sampling and testing read ---------------------------------------------

@pytest.mark.slow
def test_generation_ema_is_what_sampling_and_testing_read(tmp_path, monkeypatch):
    """imagenet256_dit.py's EMAHook (momentum 1e-4 = 1 - 0.9999; raised to 0.5 here so that two
    iterations move it): the checkpoint's state_dict holds the EMA of the trained weights,
    (1 - m) p_1 + m p_2 of the weights after iterations 1 and 2 (the trained ones under
    ema_state_dict), and testing it as tools/test.py does, the test loop and the generation
    hook's samples both read that EMA."""
    import copy

    from mmengine.hooks import Hook

    from genrep.engine.hooks import GenerationEvalHook
    monkeypatch.chdir(tmp_path)
    write_imagenet('data/imagenet')
    write_dit_checkpoint('checkpoints/DiT-XL-2-256', sample_size=CROP // 2)
    cfg = Config.fromfile(config_path('imagenet256_dit.py'))
    ema_cfg, = [h for h in cfg.custom_hooks if h.type == 'mmengine.EMAHook']
    assert ema_cfg.momentum == pytest.approx(1 - 0.9999)
    cfg = shrink_generation_config(cfg, tmp_path, {'model.perception.head.in_channels': 16})
    for hook in cfg.custom_hooks:
        if hook.type == 'mmengine.EMAHook':
            hook.momentum = 0.5
    test_cfg = copy.deepcopy(cfg)
    key = 'perception.backbone.denoiser.model.proj_out_2.weight'

    def weight(runner):
        return runner.model.state_dict()[key].detach().clone()

    trained, seen = [], {}

    class Record(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            trained.append(weight(runner))

        def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            seen['test'] = weight(runner)

    runner = build_runner(cfg, str(tmp_path / 'work'))
    runner.register_hook(Record())
    runner.train()
    assert len(trained) == 2 and not torch.equal(trained[0], trained[1])
    ema = 0.5 * trained[0] + 0.5 * trained[1]
    checkpoint = torch.load(tmp_path / 'work' / 'iter_2.pth', map_location='cpu',
                            weights_only=False)
    torch.testing.assert_close(checkpoint['state_dict'][key], ema)
    torch.testing.assert_close(checkpoint['ema_state_dict']['module.' + key], trained[1])

    generate = GenerationEvalHook.generate

    def recording_generate(hook, model):
        seen['sampling'] = model.state_dict()[key].detach().clone()
        return generate(hook, model)

    monkeypatch.setattr(GenerationEvalHook, 'generate', recording_generate)
    test_cfg.load_from = str(tmp_path / 'work' / 'iter_2.pth')
    tester = build_runner(test_cfg, str(tmp_path / 'test'))
    tester.register_hook(Record())
    tester.test()
    torch.testing.assert_close(seen['test'], ema)
    torch.testing.assert_close(seen['sampling'], ema)


def test_generation_configs_keep_the_ema_where_they_generate():
    for name in ('imagenet256_dit.py', 'imagenet256_ldm.py', 'celebahq256_ldm.py',
                 'lsun_church256_ldm.py', 'imagenet256_dit_genrep_stage2.py',
                 'imagenet256_ldm_genrep_stage2.py', 'celebahq256_ldm_genrep_stage2.py'):
        hooks = [h.type for h in Config.fromfile(config_path(name)).custom_hooks]
        assert 'mmengine.EMAHook' in hooks and 'genrep.GenerationEvalHook' in hooks, name
    for name in ('imagenet256_dit_genrep_stage1.py', 'imagenet256_ldm_genrep_stage1.py',
                 'celebahq256_ldm_genrep_stage1.py'):
        hooks = [h.type for h in Config.fromfile(config_path(name)).custom_hooks]
        assert 'genrep.GenerationEvalHook' in hooks and 'mmengine.EMAHook' not in hooks, name


# -- schedules and named protocols ---------------------------------------------------------------

def test_cocostuff_open_vocabulary_schedule_is_80k():
    cfg = Config.fromfile(config_path('cocostuff_ov_ade20k_ldm.py'))
    assert cfg.train_cfg.max_iters == 80000
    poly, = cfg.param_scheduler
    assert (poly.type, poly.begin, poly.end, poly.power) == ('PolyLR', 0, 80000, 0.9)
    assert Config.fromfile(config_path('ade20k_ldm.py')).train_cfg.max_iters == 160000


@pytest.mark.parametrize('name,protocol,steps,sampling', [
    ('celebahq256_ldm.py', 'ldm_readme', 200, dict(sampler='ddim', eta=0.0)),
    ('lsun_church256_ldm.py', 'ldm_readme', 400, dict(sampler='ddim', eta=0.0)),
    ('imagenet256_ldm.py', 'ldm_readme_unguided', 200,
     dict(sampler='ddim', eta=1.0, guidance_scale=1.0)),
    ('imagenet256_dit.py', 'dit_table4', 250, dict(guidance_scale=1.5)),
])
def test_published_protocols_are_offered_by_name(name, protocol, steps, sampling):
    """Each generation config names the protocol of the figure it cites; the hook it runs is the
    paper's own (Sec. 3.3: 200 DDPM steps for the LDMs, 250 for DiT)."""
    cfg = Config.fromfile(config_path(name))
    chosen = cfg.generation_protocols[protocol]
    assert chosen.num_steps == steps and dict(chosen.sampling) == sampling
    hook, = [h for h in cfg.custom_hooks if h.type == 'genrep.GenerationEvalHook']
    paper = cfg.generation_protocols['paper']
    assert hook.num_steps == paper.num_steps == (250 if 'dit' in name else 200)


def test_dino_config_offers_mmdets_optimiser_beside_the_papers():
    cfg = Config.fromfile(config_path('ov_coco_dino_ldm.py'))
    assert cfg.optim_wrapper.optimizer.lr == 2e-3  # the paper's detection recipe
    assert cfg.dino_optim_wrapper.optimizer.lr == 1e-4
    assert cfg.dino_optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1

"""GenRep: the perception model and the generation branch share one denoiser; stage 1 returns the
perception loss (Eq. 5), stage 2 both losses (Eq. 5, 10) for the gradient alignment (Eq. 11-16)."""
import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample
from tiny_models import unet2d_cfg

from genrep.diffusion import DiffusionSchedule
from genrep.engine import GradientAlignOptimWrapper, SemanticEMAHook, semantic_ema_update
from genrep.models import GenRep

SCHEDULER = dict(num_train_timesteps=20, beta_schedule='linear', beta_start=1e-3, beta_end=0.2,
                 variance_type='learned_range', clip_sample=False)


def perception_cfg(learn_sigma=True):
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(type='genrep.DiffusionBackbone',
                      denoiser=unet2d_cfg(in_channels=1, learn_sigma=learn_sigma)),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=10, in_channels=32,
                  loss=dict(type='mmpretrain.CrossEntropyLoss')),
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor', num_classes=10,
                               mean=[127.5], std=[127.5], to_rgb=False))


def build(stage, **kwargs):
    torch.manual_seed(0)
    cfg = dict(
        perception=perception_cfg(),
        task=dict(type='ClassificationAdapter'),
        stage=stage,
        schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER),
        posterior=dict(type='ReverseChainPosterior', burn_in=1, thinning=1, temperature=0.1,
                       schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER,
                                     num_inference_steps=4)),
        num_candidates=2)
    if stage == 2:
        cfg.update(semantic_noise=dict(hidden_channels=8), rep_align=dict(hidden_channels=16))
    cfg.update(kwargs)
    return GenRep(**cfg)


def batch(n=4):
    inputs = torch.rand(n, 1, 16, 16) * 2 - 1
    samples = [DataSample().set_gt_label(i % 10) for i in range(n)]
    return inputs, samples


def test_one_denoiser_is_shared():
    model = build(2)
    assert model.denoiser is model.perception.backbone.denoiser
    names = [n for n, _ in model.named_parameters() if 'denoiser.model.conv_in' in n]
    # The unified denoiser once (inside the backbone) and its EMA copy: no third copy.
    assert sorted(names) == ['perception.backbone.denoiser.model.conv_in.bias',
                             'perception.backbone.denoiser.model.conv_in.weight',
                             'semantic_denoiser.model.conv_in.bias',
                             'semantic_denoiser.model.conv_in.weight']
    assert not any(p.requires_grad for p in model.semantic_denoiser.parameters())


def test_stage1_returns_the_perception_loss():
    model = build(1)
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'percept'}
    objective = losses['percept']
    # The teacher's cost rides along, logged and not optimised.
    assert set(objective.task) == {'loss', 'teacher_evals', 'teacher_time'}
    assert objective.gen_distil is not None
    assert model.distill_images is None  # every image of the batch
    assert objective.task['teacher_evals'] == inputs.shape[0] * (
        1 + model.num_candidates) * model.posterior.num_evaluations()
    parsed, log_vars = model.parse_losses(losses)
    assert torch.is_tensor(parsed)
    torch.testing.assert_close(parsed, objective.task['loss'] + objective.gen_distil)
    assert set(log_vars) == {'percept_loss', 'percept_loss_gen_distil', 'percept_teacher_evals',
                             'percept_teacher_time', 'loss_percept', 'loss'}
    parsed.backward()
    assert model.denoiser.model.conv_in.weight.grad.abs().sum() > 0


def test_distillation_counts_each_distilled_image_as_one_image_of_the_batch():
    """Eq. 5 per image: with n of B images distilled, L_gen_distil = sum of their KLs / B, whatever
    n (no weight in the config to keep in step with the batch)."""
    from genrep.models.losses.generative_distillation import generative_distillation_kl
    model = build(1, distill_images=3, posterior=dict(
        type='ReverseChainPosterior', burn_in=1, thinning=1, temperature=0.1, seed=5,
        schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER, num_inference_steps=4)))
    inputs, samples = batch(8)
    out = model.task.forward_train(model.perception, inputs, samples, with_scores=True)
    loss = model.generative_distillation(inputs, out.scores)
    from genrep.diffusion.posteriors import candidate_classes
    logits = out.scores.logits[:3]
    candidates = candidate_classes(logits.detach(), 2, out.scores.labels[:3])
    teacher = model.posterior.posterior(model.denoiser, inputs[:3], candidates)
    expected = generative_distillation_kl(teacher, logits, candidates).sum() / 8
    torch.testing.assert_close(loss, expected)


def test_stage1_trains_with_plain_optim_wrapper():
    model = build(1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    inputs, samples = batch()
    before = model.perception.head.fc.weight.clone()
    model.train_step(dict(inputs=list((inputs * 127.5 + 127.5).to(torch.uint8)),
                          data_samples=samples), wrapper)
    assert not torch.equal(before, model.perception.head.fc.weight)


def test_stage2_losses_and_gradient_alignment_step():
    model = build(2)
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'percept', 'genera'}
    assert set(losses['genera'].terms()) == {'loss_diffusion', 'loss_vlb', 'loss_rep_align'}
    parsed, log_vars = model.parse_losses(losses)
    assert set(parsed) == {'percept', 'genera'}
    assert {'percept_loss', 'percept_loss_gen_distil', 'percept_teacher_evals',
            'percept_teacher_time', 'genera_loss_diffusion', 'genera_loss_vlb',
            'genera_loss_rep_align', 'loss_percept', 'loss_genera', 'loss'} == set(log_vars)
    assert all(torch.isfinite(v) for v in log_vars.values())

    message_hub = MessageHub.get_instance('test_genrep_stage2')
    wrapper = GradientAlignOptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1))
    wrapper.message_hub = message_hub
    weight = model.semantic_noise.variance_mlp[0].weight.clone()
    head = model.perception.head.fc.weight.clone()
    model.train_step(dict(inputs=list((inputs * 127.5 + 127.5).to(torch.uint8)),
                          data_samples=samples), wrapper)
    assert not torch.equal(head, model.perception.head.fc.weight)
    assert 'train/grad_cos_sim' in message_hub.log_scalars
    # The zero-initialised last layer of the variance MLP moves first; the first layer gets its
    # gradient only through it, so after one step the last layer has changed.
    assert model.semantic_noise.variance_mlp[-1].weight.abs().sum() > 0
    assert torch.equal(weight, model.semantic_noise.variance_mlp[0].weight)


def test_semantic_ema_update_against_hand_formula():
    torch.manual_seed(0)
    sem, uni = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = {k: 0.9 * v + 0.1 * uni.state_dict()[k] for k, v in sem.state_dict().items()}
    semantic_ema_update(sem, uni, momentum=0.9)
    for k, v in sem.state_dict().items():
        torch.testing.assert_close(v, expected[k])


def test_ema_hook_fills_a_new_semantic_denoiser_once():

    class Runner:
        pass

    model = build(2)
    runner = Runner()
    runner.model = model
    runner.iter = 0
    with torch.no_grad():
        model.denoiser.model.conv_in.weight.add_(1.0)
    hook = SemanticEMAHook(momentum=0.5)
    hook.before_train(runner)
    torch.testing.assert_close(model.semantic_denoiser.model.conv_in.weight,
                               model.denoiser.model.conv_in.weight)
    assert bool(model.semantic_initialized)
    # A resumed run (flag set) keeps its semantic weights.
    with torch.no_grad():
        model.denoiser.model.conv_in.weight.add_(1.0)
    hook.before_train(runner)
    assert not torch.allclose(model.semantic_denoiser.model.conv_in.weight,
                              model.denoiser.model.conv_in.weight)
    expected = 0.5 * model.semantic_denoiser.model.conv_in.weight + \
        0.5 * model.denoiser.model.conv_in.weight
    hook.after_train_iter(runner, 0)
    torch.testing.assert_close(model.semantic_denoiser.model.conv_in.weight, expected)


def test_copied_denoiser_captures_its_own_features():
    model = build(1)
    den = model.denoiser
    twin = copy.deepcopy(den)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        a = den.forward_features(x, 3, torch.tensor([1, 2]))
        b = twin.forward_features(x, 3, torch.tensor([1, 2]))
    for fa, fb in zip(a.features, b.features):
        torch.testing.assert_close(fa, fb)
    assert den._captured == {} and twin._captured == {}


def test_sample_matches_an_independent_reverse_loop():
    """With the adjuster at its zero initialisation, sampling is the plain ancestral DDPM chain of
    the learned-range model, written out here step by step."""
    model = build(2).eval()
    schedule = DiffusionSchedule(scheduler=SCHEDULER, num_inference_steps=5)
    labels = torch.tensor([0, 3])
    samples = model.sample(labels, schedule, generator=torch.Generator().manual_seed(7))
    assert samples.shape == (2, 1, 16, 16)

    gen = torch.Generator().manual_seed(7)
    x = torch.randn((2, 1, 16, 16), generator=gen)
    den = model.denoiser
    with torch.no_grad():
        for index in reversed(range(schedule.num_steps)):
            t = int(schedule.timesteps[index])
            out = den(x, t, labels)
            eps, v = out[:, :1], out[:, 1:]
            abar = float(schedule.alphas_cumprod[index])
            abar_prev = float(schedule.alphas_cumprod_prev[index])
            beta = 1 - abar / abar_prev
            x0 = (x - (1 - abar)**0.5 * eps) / abar**0.5
            mean = (beta * abar_prev**0.5 * x0 + (1 - abar_prev) * (1 - beta)**0.5 * x) / (1 - abar)
            if index == 0:
                x = mean
                break
            post_var = beta * (1 - abar_prev) / (1 - abar)
            frac = (v + 1) / 2
            log_var = frac * torch.log(torch.tensor(beta)) + (1 - frac) * torch.log(
                torch.tensor(post_var))
            x = mean + torch.exp(0.5 * log_var) * torch.randn(x.shape, generator=gen)
    torch.testing.assert_close(samples, x, rtol=1e-4, atol=1e-5)


def test_trainable_patterns():
    model = build(1, trainable=[r'attentions', r'^perception\.head\.'])
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all('attentions' in n or n.startswith('perception.head.')
                             for n in trainable)
    assert any('attentions' in n for n in trainable)
    with pytest.raises(ValueError, match='match no parameter'):
        build(1, trainable=['no_such_block'])


def test_backbone_without_denoiser_is_refused():
    cfg = perception_cfg()
    cfg['backbone'] = dict(type='mmpretrain.ResNet', depth=18)
    with pytest.raises(TypeError, match='DiffusionBackbone'):
        GenRep(perception=cfg, task=dict(type='ClassificationAdapter'))


def test_generation_eval_hook_adds_scores_and_writes_a_grid(tmp_path):
    """The hook samples every class, scores the samples with GenerationMetric (a random feature
    net and fixture real images here) and adds the scores to the epoch's metrics."""
    from data_fixtures import write_fashion_mnist
    from genrep.datasets import FashionMNIST
    from genrep.engine import GenerationEvalHook
    from genrep.evaluation.metrics import FashionMNISTFeatureNet, save_feature_net

    class Logger:
        def info(self, message):
            self.last = message

    class Runner:
        pass

    torch.manual_seed(0)
    net_path = str(tmp_path / 'net.pth')
    net = FashionMNISTFeatureNet().eval()
    save_feature_net(net, net_path, 0.0)
    data = write_fashion_mnist(tmp_path / 'data', num_train=40, num_test=8)
    hook = GenerationEvalHook(
        metric=dict(type='GenerationMetric', feature_net=net_path, is_splits=2,
                    real_dataset=dict(type='genrep.FashionMNIST', data_root=str(data))),
        samples_per_class=3, num_steps=2, batch_size=16, grid_rows=2)
    runner = Runner()
    perception = perception_cfg()
    perception['backbone']['denoiser']['config']['sample_size'] = 32  # the feature net's size
    runner.model = build(2, perception=perception)
    runner.work_dir = str(tmp_path)
    runner.logger = Logger()
    names = FashionMNIST.METAINFO['classes']
    runner.test_loop = SimpleNamespace(dataloader=SimpleNamespace(
        dataset=SimpleNamespace(metainfo=dict(classes=names))))
    metrics = {'accuracy/top1': 50.0}
    hook.after_test_epoch(runner, metrics)
    assert {'generation/fid', 'generation/is', 'generation/cas'} <= set(metrics)
    assert metrics['accuracy/top1'] == 50.0
    # CAS: the feature net's top-1 on the hook's samples (the same seed draws the same ones)
    from genrep.evaluation.metrics import to_feature_net_input
    from genrep.evaluation.metrics.generation import to_uint8_image
    was_training = runner.model.training
    images, labels = hook.generate(runner.model.eval())
    runner.model.train(was_training)
    with torch.no_grad():
        predicted = net.logits(to_feature_net_input(
            torch.stack([to_uint8_image(image) for image in images]))).argmax(1)
    assert metrics['generation/cas'] == pytest.approx((predicted == labels).float().mean().item())
    from PIL import Image
    # cells enlarged to >= 96 px (x3), a 14 px header of class names above the columns
    grid = np.asarray(Image.open(tmp_path / 'samples.png').convert('L'))
    assert grid.shape == (14 + 2 * 96, 10 * 96)
    assert (grid[:14] < 128).any(axis=0).reshape(10, 96).any(axis=1).all()  # a name per column
    assert hook.class_names(runner.test_loop, [0, 9]) == ['T-shirt/top', 'Ankle boot']
    assert hook.class_names(SimpleNamespace(), [0, 9]) == ['0', '9']  # no dataset: indices
    assert runner.model.training  # restored


def test_stage0_trains_the_denoiser_alone():
    model = build(0)
    inputs, samples = batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'genera'}
    assert set(losses['genera'].terms()) == {'loss_diffusion', 'loss_vlb'}
    parsed, _ = model.parse_losses(losses)
    assert torch.is_tensor(parsed)
    parsed.backward()
    assert model.denoiser.model.conv_in.weight.grad.abs().sum() > 0
    assert model.perception.head.fc.weight.grad is None
    with pytest.raises(ValueError, match='stage 2'):
        build(1, semantic_noise=dict())


def _only_train(model, prefix):
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(prefix))
    return [p for p in model.parameters() if p.requires_grad]


def test_variational_bound_descends_towards_the_true_posterior():
    """loss_vlb is a bound: KLs (t > 0) and a discretised decoder NLL (t = 0) in bits, so >= 0;
    a sign error makes it negative. Minimising it alone (the semantic adjuster trains) lowers it on
    a fixed batch, noise and step."""
    model = build(2)
    inputs, samples = batch()
    params = _only_train(model, 'semantic_noise.')
    optim = torch.optim.Adam(params, lr=0.005)
    values = []
    for _ in range(15):
        torch.manual_seed(3)
        loss = model.generation_step(inputs, samples).vlb
        values.append(loss.item())
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert min(values) > 0, values
    assert values[-1] < values[0] - 1e-3, values


def test_rep_align_pulls_features_towards_the_semantic_target():
    """Minimising loss_rep_align alone raises the cosine similarity of the projected deepest
    feature to the EMA denoiser's perception feature of the clean image, computed here
    independently; a sign error in the loss or its target would lower it."""
    import torch.nn.functional as F
    model = build(2)
    inputs, samples = batch()
    with torch.no_grad():  # a semantic copy that differs from the unified denoiser
        for param in model.semantic_denoiser.parameters():
            param.add_(0.05 * torch.randn_like(param))
    params = _only_train(model, 'rep_align.')
    optim = torch.optim.Adam(params, lr=0.01)

    def similarity():
        """cos(projected feature of a lightly noised image, the EMA denoiser's t = 0 feature of
        the clean image under the null class), averaged over tokens."""
        with torch.no_grad():
            target = model.semantic_denoiser.forward_features(inputs, 0, None).features[-1]
            noise = torch.randn(inputs.shape, generator=torch.Generator().manual_seed(0))
            x_t = model.schedule.q_sample(inputs, 1, noise)
            labels = torch.tensor([s.gt_label.item() for s in samples])
            feats = model.denoiser.forward_features(
                x_t, int(model.schedule.timesteps[1]), labels).features[-1]
            return float(F.cosine_similarity(model.rep_align.project(feats), target, dim=1).mean())

    before = similarity()
    for _ in range(10):
        torch.manual_seed(3)
        loss = model.generation_step(inputs, samples).rep_align
        optim.zero_grad()
        loss.backward()
        optim.step()
    after = similarity()
    assert after > before + 0.05, (before, after)


def test_teacher_applies_the_models_reverse_step_adjustment():
    """The documented choice: in stage 2 the teacher's components are the model's adjusted
    reverse steps (x_sem := x_t, as sampling runs them); with teacher_adjust=False, Eq. 1 as is.
    The adjuster starts at zero (no difference); once trained the two teachers differ."""
    posterior = dict(type='ReverseChainPosterior', burn_in=1, thinning=1, temperature=0.1, seed=5,
                     schedule=dict(type='DiffusionSchedule', scheduler=SCHEDULER,
                                   num_inference_steps=4))
    adjusted, plain = build(2, posterior=posterior), build(2, posterior=posterior,
                                                           teacher_adjust=False)
    inputs, samples = batch()
    scores = adjusted.task.forward_train(adjusted.perception, inputs, samples, True).scores
    torch.testing.assert_close(adjusted.generative_distillation(inputs, scores),
                               plain.generative_distillation(inputs, scores))
    with torch.no_grad():
        for model in (adjusted, plain):
            torch.manual_seed(1)
            for param in model.semantic_noise.parameters():
                param.add_(0.3 * torch.randn_like(param))
    ids = torch.tensor([[0, 1, 2]] * 4)
    hook = adjusted.reverse_step_adjust(adjusted.posterior.schedule)
    by_hand = adjusted.posterior.log_likelihood(adjusted.denoiser, inputs, ids, adjust=hook)
    assert (by_hand - adjusted.posterior.log_likelihood(adjusted.denoiser, inputs, ids)).abs().max(
    ) > 1e-4
    assert not torch.allclose(adjusted.generative_distillation(inputs, scores),
                              plain.generative_distillation(inputs, scores))


def test_generation_eval_hook_scores_the_same_samples_with_each_metric(tmp_path):
    """A list of metrics: each scores the same samples (two prefixes here); a key reported by two
    metrics is refused."""
    from data_fixtures import write_fashion_mnist
    from genrep.engine import GenerationEvalHook
    from genrep.evaluation.metrics import FashionMNISTFeatureNet, save_feature_net

    torch.manual_seed(0)
    net_path = str(tmp_path / 'net.pth')
    net = FashionMNISTFeatureNet().eval()
    save_feature_net(net, net_path, 0.0)
    data = write_fashion_mnist(tmp_path / 'data', num_train=40, num_test=8)
    metric = dict(type='GenerationMetric', feature_net=net_path, is_splits=2,
                  real_dataset=dict(type='genrep.FashionMNIST', data_root=str(data)))
    perception = perception_cfg()
    perception['backbone']['denoiser']['config']['sample_size'] = 32
    runner = SimpleNamespace(model=build(2, perception=perception), work_dir=str(tmp_path),
                             logger=SimpleNamespace(info=lambda message: None),
                             test_loop=SimpleNamespace())
    hook = GenerationEvalHook(metric=[metric, dict(metric, prefix='again')], samples_per_class=2,
                              num_steps=2, grid_file=None)
    metrics = {}
    hook.after_test_epoch(runner, metrics)
    for key in ('fid', 'is', 'cas'):
        assert metrics[f'again/{key}'] == pytest.approx(metrics[f'generation/{key}'])
    twice = GenerationEvalHook(metric=[metric, metric], samples_per_class=2, num_steps=2,
                               grid_file=None)
    with pytest.raises(KeyError, match='reported twice'):
        twice.after_test_epoch(runner, {})


def indexed_batch(n):
    """A batch whose samples carry dataset indices, so their random draws follow them."""
    inputs = torch.rand(n, 1, 16, 16) * 2 - 1
    samples = [DataSample(metainfo=dict(sample_idx=100 + i)).set_gt_label(i % 10)
               for i in range(n)]
    return inputs, samples


def test_generation_budget_is_the_generation_loss_of_the_first_images():
    """generation_images = 3 of a batch of 8: the generation loss (Eq. 10) is exactly the one of
    the first 3 images alone, term by term, and its gradient reaches the denoiser."""
    budgeted, full = build(2, generation_images=3), build(2)
    inputs, samples = indexed_batch(8)
    torch.manual_seed(1)  # outside a runner, the run seed of the per-sample draws
    got = budgeted.generation_step(inputs, samples)
    torch.manual_seed(1)
    expected = full.generation_step(inputs[:3], samples[:3])
    assert set(got.terms()) == {'loss_diffusion', 'loss_vlb', 'loss_rep_align'}
    for name, value in expected.terms().items():
        torch.testing.assert_close(got.terms()[name], value)
    # Not the loss of all 8 images.
    assert not torch.allclose(full.generation_step(inputs, samples).diffusion, got.diffusion)
    got.total.backward()
    assert budgeted.denoiser.model.conv_in.weight.grad.abs().sum() > 0


def test_generation_budget_weighs_every_image_alike_across_processes(monkeypatch):
    """A budget of 5 over 2 processes of 4 images: rank 0 keeps 3 images, rank 1 keeps 2 (the
    samplers interleave ranks); each local mean is scaled so that DDP's average of the two equals
    the mean over the 5 images."""
    import genrep.models.distillation as distillation_module  # local_share's budget split
    import genrep.models.genrep as genrep_module
    inputs, samples = indexed_batch(4)
    per_rank = {}
    for rank in (0, 1):
        for module in (genrep_module, distillation_module):
            monkeypatch.setattr(module, 'get_dist_info', lambda rank=rank: (rank, 2))
        model = build(2, generation_images=5, vlb_weight=0.0, rep_align=None)
        assert model.num_generated(4) == 3 - rank
        torch.manual_seed(1)
        per_rank[rank] = model.generation_step(inputs, samples).diffusion
    for module in (genrep_module, distillation_module):
        monkeypatch.setattr(module, 'get_dist_info', lambda: (0, 1))
    model = build(2, vlb_weight=0.0, rep_align=None)
    means = []
    for n in (3, 2):
        torch.manual_seed(1)
        means.append(model.generation_step(inputs[:n], samples[:n]).diffusion)
    # DDP averages the processes' losses' gradients: (l0 + l1) / 2 = (3 m0 + 2 m1) / 5.
    torch.testing.assert_close((per_rank[0] + per_rank[1]) / 2, (3 * means[0] + 2 * means[1]) / 5)


@pytest.mark.parametrize('key', ['generation_images', 'distill_images'])
def test_budgets_must_be_positive(key):
    with pytest.raises(ValueError, match=key):
        build(2, **{key: 0})


def test_teacher_runs_on_the_semantic_copy_when_asked():
    """teacher_weights='semantic' builds the semantic copy in stage 1 too, and the teacher reads
    it: with the hook at momentum 1 the copy keeps the weights the stage started from, so training
    the unified denoiser leaves the teacher where it was, while the default teacher moves."""

    class Runner:
        pass

    inputs, samples = batch()
    targets = {}
    for weights in ('unified', 'semantic'):
        model = build(1, teacher_weights=weights)
        assert (model.semantic_denoiser is not None) == (weights == 'semantic')
        if weights == 'semantic':
            runner = Runner()
            runner.model, runner.iter = model, 0
            hook = SemanticEMAHook(momentum=1.0)
            hook.before_train(runner)
            assert model.teacher_denoiser is model.semantic_denoiser
        else:
            assert model.teacher_denoiser is model.denoiser
        out = model.task.forward_train(model.perception, inputs, samples, with_scores=True)
        before = model.generative_distillation(inputs, out.scores, torch.Generator().manual_seed(0))
        with torch.no_grad():  # a training step's worth of change to the unified denoiser
            for p in model.denoiser.parameters():
                p.add_(0.05 * torch.randn_like(p))
        if weights == 'semantic':
            hook.after_train_iter(runner, 0)
        after = model.generative_distillation(inputs, out.scores, torch.Generator().manual_seed(0))
        targets[weights] = (before, after)
    torch.testing.assert_close(*targets['semantic'])
    assert not torch.allclose(*targets['unified'])


@pytest.mark.parametrize('kwargs,message', [
    (dict(teacher_weights='ema'), "teacher_weights must be 'unified' or 'semantic'"),
    (dict(teacher_weights='semantic', posterior=None), 'needs a posterior'),
])
def test_teacher_weights_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(1, **kwargs)


class _Runner:
    """What SemanticEMAHook reads of a Runner."""

    def __init__(self, model):
        self.model, self.iter = model, 0


def trained_stage1_with_frozen_teacher():
    """A stage-1 model whose semantic copy is its frozen teacher (filled by the hook at momentum
    1), after "training" moved its unified denoiser away from it; and a runner holding it."""
    stage1 = build(1, teacher_weights='semantic')
    runner = _Runner(stage1)
    SemanticEMAHook(momentum=1.0).before_train(runner)
    assert int(stage1.semantic_stage) == 1
    with torch.no_grad():
        stage1.denoiser.model.conv_in.weight.add_(1.0)  # stage 1 trains; its teacher stays
    return stage1, runner


def test_a_new_stage_refills_the_semantic_copy_of_the_stage_before():
    """A stage-1 checkpoint whose semantic copy was its frozen teacher: a new stage 2 loaded from
    it starts its EMA from the unified denoiser, a resumed stage 2 keeps its own copy."""
    stage1, runner = trained_stage1_with_frozen_teacher()
    checkpoint = stage1.state_dict()

    stage2 = build(2)
    stage2.load_state_dict(checkpoint, strict=False)  # load_from
    runner.model = stage2
    hook = SemanticEMAHook(momentum=0.999)
    hook.before_train(runner)
    torch.testing.assert_close(stage2.semantic_denoiser.model.conv_in.weight,
                               stage2.denoiser.model.conv_in.weight)
    assert int(stage2.semantic_stage) == 2
    with torch.no_grad():
        stage2.denoiser.model.conv_in.weight.add_(1.0)
    resumed = build(2)
    resumed.load_state_dict(stage2.state_dict())  # resume
    runner.model = resumed
    hook.before_train(runner)
    torch.testing.assert_close(resumed.semantic_denoiser.model.conv_in.weight,
                               stage2.semantic_denoiser.model.conv_in.weight)
    assert not torch.allclose(resumed.semantic_denoiser.model.conv_in.weight,
                              resumed.denoiser.model.conv_in.weight)


def test_carry_over_keeps_the_copy_of_the_stage_before_as_the_ema_start():
    """SemanticEMAHook(carry_over=True): a new stage 2 loaded from a stage-1 checkpoint keeps that
    stage's frozen teacher as the start of its EMA (not the unified denoiser stage 1 trained), and
    records stage 2, so that a resumed stage 2 keeps its own copy; a copy never filled is filled."""
    stage1, runner = trained_stage1_with_frozen_teacher()
    teacher = stage1.semantic_denoiser.model.conv_in.weight.clone()

    stage2 = build(2)
    stage2.load_state_dict(stage1.state_dict(), strict=False)  # load_from
    runner.model = stage2
    SemanticEMAHook(momentum=0.999, carry_over=True).before_train(runner)
    torch.testing.assert_close(stage2.semantic_denoiser.model.conv_in.weight, teacher)
    assert not torch.allclose(stage2.semantic_denoiser.model.conv_in.weight,
                              stage2.denoiser.model.conv_in.weight)
    assert int(stage2.semantic_stage) == 2 and bool(stage2.semantic_initialized)

    fresh = build(2)  # nothing loaded: the copy is filled from the unified denoiser
    with torch.no_grad():
        fresh.semantic_denoiser.model.conv_in.weight.add_(1.0)
    runner.model = fresh
    SemanticEMAHook(momentum=0.999, carry_over=True).before_train(runner)
    torch.testing.assert_close(fresh.semantic_denoiser.model.conv_in.weight,
                               fresh.denoiser.model.conv_in.weight)

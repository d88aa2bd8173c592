"""The cost card of every paper config: FLOPs of one training iteration per image, split by what
spends them, activation memory, and seconds and GPU hours on H100s at a stated throughput.

    python benchmarks/paper_cost.py [--only ade20k_ldm ...] [--mfu 0.4] [--out docs/paper_cost.md]
        [--json work_dirs/paper_cost.json] [--no-heads]

How it counts (torch.utils.flop_counter, benchmarks/flop_count.py; 2 FLOPs a multiply-add; matmuls,
convolutions and attention, not elementwise work):

* The diffusion parts are the real-size models (tools/analysis_tools/make_random_checkpoints.py's
  upstream configs: SD 1.5, DiT-XL/2, the LDMs) built by the config's own
  ``genrep.DiffusionBackbone`` on the meta device, at the config's training input and batch 1:
  - perception: the backbone's forward (VAE encode + one denoiser pass at t = 0) and its backward
    to the config's trainable parameters (``model.trainable``: the backward only reaches what
    trains and what lies between), plus the task's neck and head forward and backward, counted on
    CPU with real tensors (the config's own head, built by the toolkit, fed random features of the
    backbone's shapes and a synthetic batch: 8 classes a segmentation crop, 7 boxes a detection
    image); ``--no-heads`` skips them;
  - teacher: for each distilled image, its VAE encode and K x S no-grad denoiser rows, K the
    candidate classes (image level: the label and the head's top ``num_candidates``; dense and
    region: ``num_candidates``), S the estimator's denoiser calls a class
    (``num_evaluations()``), plus the semantic adjustment of each row in stage 2;
  - generation (stages 0 and 2): encode, the denoiser's forward and backward at a random step,
    the semantic noise adjuster and the representation-alignment projector;
  - semantic passes (stage 2): the EMA denoiser's two no-grad passes (x_sem at x_t for the
    adjustment, a whole pass; the t = 0 feature the alignment targets, a pass that ends at the
    deepest decoder feature, ``forward_feature``);
  - alignment (stage 2): the gradient alignment of Eq. 11-16 (about 12 FLOPs a trainable
    parameter: three dot products, the projections and the sum) and the EMA update (3 a
    parameter of the denoiser), per GPU per iteration, by hand.
* Per image = the global batch's iteration (``batch_size`` x 8 GPUs) divided by its images: the
  teacher and the generation branch cover only ``distill_images`` / ``generation_images`` of the
  global batch.
* Activation memory per image: the bytes of the tensors autograd saves for the backward in the
  forward passes that train (float32; about half in bf16), each counted once, views of one
  storage separately (an upper bound).
* Time: FLOPs / (H100 SXM dense BF16 peak, 989.4 TFLOP/s, NVIDIA H100 Tensor Core GPU datasheet)
  x MFU, the model-FLOPs utilisation assumed sustained (0.4 by default: large transformer and
  UNet training in bf16 reaches 0.35-0.5 on H100s; a stated assumption, not a measurement here).
  GPU hours = the config's whole schedule (``max_iters`` iterations of the global batch).

Teacher share: the teacher's FLOPs over the rest of the stage's; busiest-GPU share: the same on
the process that distils the most images (GenRep gives process r of W the images r, r + W, ... of
the first ``distill_images``), what the iteration's wall time follows under data parallelism; a
``genrep.TeacherIntervalHook`` in ``custom_hooks`` (the teacher on one iteration in ``interval``)
divides both. The literal-chain column is the teacher of Algorithm 1 as written (components='chain',
combine='mixture', T' = 200 steps at strength 1: 200 denoiser calls a class) at the config's own
K, distilled images and interval. The paper reports (Table 15, ADE20K, 4 x A100): 79 GPU hours perception
only, 87 with GenRep's teacher, +10.1%.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.flop_count import SavedActivations, count_flops, forward_backward_flops  # noqa
from benchmarks.paper_models import (GROUPS, NUM_GPUS, ROOT, checkpoints_read,  # noqa: E402
                                     ensure_checkpoints, global_batch, is_genrep, load_config,
                                     max_iters, perception_cfg, point_at_cache, stage_of,
                                     synthetic_batch, task_of, train_input_shape,
                                     with_random_checkpoint_configs)

H100_BF16_DENSE = 989.4e12  # FLOP/s, NVIDIA H100 SXM datasheet (dense, without sparsity)
ALIGN_FLOPS_PER_PARAM = 12
EMA_FLOPS_PER_PARAM = 3
LITERAL_CHAIN_EVALS = 200  # Algorithm 1: T' = 200 reverse steps, every step a denoiser call
PAPER_TABLE15 = dict(perception_only=79, genrep=87, hardware='4 x A100')
TERA = 1e12


@dataclass
class Cost:
    """One config's cost per image of a training iteration (FLOPs) and its schedule."""
    config: str
    stage: str
    input_shape: tuple
    batch: int
    iters: int
    perception: float = 0.0
    head: Optional[float] = None
    teacher: float = 0.0
    teacher_literal: float = 0.0
    teacher_busiest: float = 0.0  # the busiest process's teacher, as a share of its step
    generation: float = 0.0
    semantic: float = 0.0
    alignment: float = 0.0
    activation_bytes: float = 0.0
    encode: float = 0.0
    denoiser_row: float = 0.0
    teacher_rows: str = ''
    notes: List[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return (self.perception + (self.head or 0.0) + self.teacher + self.generation +
                self.semantic + self.alignment)

    @property
    def over_floor(self) -> Optional[float]:
        """Stage 2 against its floor, a perception step plus a generation-only step on the same
        batch (issue 23, part 4): what the teacher, the semantic passes and the alignment add.
        ``None`` for other stages."""
        floor = self.perception + (self.head or 0.0) + self.generation
        return self.total / floor if self.stage == 'stage 2' and floor > 0 else None

    @property
    def without_teacher(self) -> float:
        return self.total - self.teacher

    def teacher_share(self, literal: bool = False) -> Optional[float]:
        teacher = self.teacher_literal if literal else self.teacher
        return teacher / self.without_teacher if self.without_teacher and teacher else None


# -- the parts ----------------------------------------------------------------------------------
def build_meta_backbone(cfg):
    """The config's DiffusionBackbone at real size on the meta device."""
    import genrep  # noqa: F401
    from genrep.registry import MODELS
    backbone = with_random_checkpoint_configs(perception_cfg(cfg).to_dict())['backbone']
    backbone['type'] = backbone['type'].split('.')[-1]
    with torch.device('meta'):
        return MODELS.build({'_scope_': 'genrep', **backbone})


def set_trainable(backbone: nn.Module, cfg) -> int:
    """requires_grad as the config trains: GenRep's ``trainable`` patterns over
    'perception.backbone.<name>'; a plain perception config trains the backbone but its frozen
    VAE. Returns the number of trainable backbone parameters."""
    patterns = cfg.model.get('trainable') if is_genrep(cfg) else None
    count = 0
    for name, param in backbone.named_parameters():
        if patterns is None:
            train = not (name.startswith('vae.') and backbone.freeze_vae)
        else:
            train = any(re.search(p, f'perception.backbone.{name}') for p in patterns)
        param.requires_grad_(train)
        count += param.numel() if train else 0
    return count


def _loss_of(outputs) -> torch.Tensor:
    return sum(v.float().mean() for v in outputs)


def perception_backbone_cost(backbone, shape):
    """(fwd + bwd FLOPs, saved bytes) of the backbone on one image."""
    images = torch.zeros(1, 3, *shape, device='meta')
    params = [p for p in backbone.parameters() if p.requires_grad]
    fwd, bwd, _ = forward_backward_flops(lambda: _loss_of(backbone(images)), params)
    return fwd + bwd, saved_activation_bytes(lambda: _loss_of(backbone(images)))


class _FlashLikeAttention(torch.autograd.Function):
    """SDPA that saves what a fused (flash / memory-efficient) kernel saves: q, k, v and the
    output, not the [L, L] attention probabilities the meta device's math path keeps."""

    @staticmethod
    def forward(ctx, q, k, v, kwargs):
        with torch.no_grad():
            out = _SDPA(q, k, v, **kwargs)
        ctx.save_for_backward(q, k, v, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError('activation counting only')


_SDPA = torch.nn.functional.scaled_dot_product_attention


def saved_activation_bytes(forward) -> int:
    """Bytes autograd saves in ``forward()`` with attention as a fused kernel keeps it (what
    training on a GPU, and PyTorch's CPU flash kernel, hold)."""
    def sdpa(q, k, v, *args, **kwargs):
        names = ('attn_mask', 'dropout_p', 'is_causal', 'scale')
        return _FlashLikeAttention.apply(q, k, v, dict(zip(names, args), **kwargs))

    torch.nn.functional.scaled_dot_product_attention = sdpa
    try:
        with SavedActivations() as saved:
            forward()
    finally:
        torch.nn.functional.scaled_dot_product_attention = _SDPA
    return saved.bytes


class FeatureStub(nn.Module):
    """Stands in for the DiffusionBackbone when counting a head: random features of its shapes,
    differentiable through one scalar, at no counted cost."""

    def __init__(self, channels, strides):
        super().__init__()
        self.channels, self.strides = list(channels), list(strides)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images, *args, **kwargs):
        b, _, h, w = images.shape
        g = torch.Generator().manual_seed(0)
        return tuple(torch.randn(b, c, h // s, w // s, generator=g) * self.scale
                     for c, s in zip(self.channels, self.strides))


def head_cost(cfg, backbone, shape):
    """(fwd + bwd FLOPs, saved bytes) of the neck and head on one image, on CPU."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    import genrep  # noqa: F401
    from genrep.registry import MODELS as GENREP_MODELS
    from genrep.registry import TASK_ADAPTERS
    GENREP_MODELS.register_module(name='PaperCostFeatureStub', module=FeatureStub, force=True)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    cache = osp.join(ROOT, 'work_dirs', 'random_checkpoints')
    model_cfg = perception_cfg(cfg).to_dict()
    model_cfg['backbone'] = {}  # the stub's, below: its checkpoints are not read
    ensure_checkpoints(checkpoints_read(model_cfg), cache)
    model_cfg = point_at_cache(model_cfg, cache)
    model_cfg['backbone'] = dict(type='genrep.PaperCostFeatureStub',
                                 channels=backbone.out_channels, strides=backbone.out_strides)
    model_cfg.pop('data_preprocessor', None)
    from mmengine.config import ConfigDict
    model = MODELS.build(ConfigDict(model_cfg)).train()
    inputs, samples = synthetic_batch(cfg, shape)
    if is_genrep(cfg):
        adapter = TASK_ADAPTERS.build({'_scope_': 'genrep', **cfg.model.task})

        def forward():
            out = adapter.forward_train(model, inputs, samples,
                                        with_scores=cfg.model.get('posterior') is not None)
            return _sum_losses(out.losses)
    else:
        def forward():
            return _sum_losses(model.loss(inputs, samples))
    flops, bwd, saved = forward_backward_flops(forward, model.parameters())
    return flops + bwd, saved


def _sum_losses(losses: Dict) -> torch.Tensor:
    total = 0.0
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        total = total + sum(v.float().sum() for v in values)
    return total


def denoiser_row_flops(denoiser, latent_shape, t: int = 500) -> float:
    """One no-grad denoiser call on one (image, class) row."""
    x = torch.zeros(1, *latent_shape, device='meta')
    with torch.no_grad():
        flops, _ = count_flops(denoiser, x, t, torch.zeros(1, dtype=torch.long, device='meta'))
    return flops


def encode_flops(backbone, shape) -> float:
    images = torch.zeros(1, 3, *shape, device='meta')
    with torch.no_grad():
        flops, latents = count_flops(backbone.encode, images)
    return flops, tuple(latents.shape[1:])


def teacher_interval(cfg) -> int:
    """The interval of the config's TeacherIntervalHook (1: the teacher every iteration)."""
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type', '').split('.')[-1] == 'TeacherIntervalHook':
            return hook.get('interval', 1)
    return 1


def candidate_count(cfg, num_classes: int) -> int:
    """K: classes the teacher covers per distilled image."""
    k = cfg.model.get('num_candidates')
    if k is None:
        return num_classes
    image_level = task_of(cfg) in ('classification', 'depth')
    return min(k + 1, num_classes) if image_level else min(k, num_classes)


def teacher_evaluations(cfg) -> int:
    """S: denoiser calls per (image, class) of the config's estimator."""
    import genrep  # noqa: F401
    from genrep.registry import POSTERIORS
    posterior = POSTERIORS.build({'_scope_': 'genrep', **cfg.model.posterior})
    if hasattr(posterior, 'num_evaluations'):
        return posterior.num_evaluations()
    return posterior.schedule.num_steps * getattr(posterior, 'num_noise', 1)


def generation_cost(cfg, backbone, latent_shape):
    """(generation fwd+bwd FLOPs, semantic no-grad FLOPs, saved bytes) per generated image."""
    import genrep  # noqa: F401
    from genrep.registry import MODELS
    denoiser = backbone.denoiser
    model = cfg.model
    x = torch.zeros(1, *latent_shape, device='meta')
    labels = torch.zeros(1, dtype=torch.long, device='meta')
    modules = {}
    with torch.device('meta'):
        if model.get('rep_align') is not None:
            deepest = denoiser.feature_channels[-1]
            modules['rep_align'] = MODELS.build({
                '_scope_': 'genrep', 'type': 'RepAlignLoss', 'in_channels': deepest,
                'target_channels': deepest, **model.rep_align})
    adjuster = None
    if model.get('semantic_noise') is not None:
        # on CPU: it checks its timesteps' values; small (a C x 2C map a location, an MLP)
        adjuster = MODELS.build({'_scope_': 'genrep', 'type': 'SemanticNoiseAdjuster',
                                 'in_channels': denoiser.in_channels, **model.semantic_noise})

    def forward():
        out = denoiser.forward_features(x, 500, labels)
        loss = out.eps.float().mean()
        if out.var_values is not None:
            loss = loss + out.var_values.float().mean()
        if 'rep_align' in modules:
            loss = loss + modules['rep_align'](out.features[-1], out.features[-1].detach())
        return loss

    params = [p for p in denoiser.parameters() if p.requires_grad]
    for module in modules.values():
        params += list(module.parameters())
    fwd, bwd, _ = forward_backward_flops(forward, params)
    saved = saved_activation_bytes(forward)
    semantic = 0.0
    row = denoiser_row_flops(denoiser, latent_shape)
    if adjuster is not None and model.get('vlb_weight', 1.0) > 0:
        semantic += row  # x_sem at x_t for the adjustment
    if 'rep_align' in modules:
        # the t = 0 feature the alignment targets: the pass ends at the deepest decoder feature
        with torch.no_grad():
            target, _ = count_flops(denoiser.forward_feature, x, 0, None)
        semantic += target
    adjust = 0.0
    if adjuster is not None:
        z = torch.zeros(1, *latent_shape)
        a_fwd, a_bwd, _ = forward_backward_flops(
            lambda: sum(v.mean() for v in adjuster(z, z, z, 500, z)), adjuster.parameters())
        fwd += a_fwd + a_bwd
        with torch.no_grad():
            adjust, _ = count_flops(adjuster, z, z, z, 500, None)
    return fwd + bwd, semantic, saved, adjust


def config_cost(name: str, heads: bool = True) -> Cost:
    cfg = load_config(name)
    stage = stage_of(cfg)
    shape = train_input_shape(cfg)
    batch = global_batch(cfg)
    cost = Cost(config=name, stage='perception' if stage is None else f'stage {stage}',
                input_shape=shape, batch=batch, iters=max_iters(cfg))
    backbone = build_meta_backbone(cfg)
    trainable = set_trainable(backbone, cfg)
    enc, latent_shape = encode_flops(backbone, shape)
    if stage != 0:
        flops, saved = perception_backbone_cost(backbone, shape)
        cost.perception = flops
        cost.activation_bytes += saved
        if heads:
            try:
                flops, saved = head_cost(cfg, backbone, shape)
                cost.head = flops
                cost.activation_bytes += saved
            except Exception as error:  # reported in the card, the rest still counted
                cost.notes.append(f'head not counted: {type(error).__name__}: '
                                  f'{str(error).splitlines()[0][:120]}')
    row = denoiser_row_flops(backbone.denoiser, latent_shape)
    cost.encode, cost.denoiser_row = enc, row
    adjust = 0.0
    if stage in (0, 2):
        gen, semantic, saved, adjust = generation_cost(cfg, backbone, latent_shape)
        generated = min(cfg.model.get('generation_images') or batch, batch)
        cost.generation = (enc + gen) * generated / batch
        cost.semantic = semantic * generated / batch
        cost.activation_bytes += saved * generated / batch
    if stage == 2:
        denoiser_params = sum(p.numel() for p in backbone.denoiser.parameters())
        cost.alignment = NUM_GPUS * (ALIGN_FLOPS_PER_PARAM * trainable +
                                     EMA_FLOPS_PER_PARAM * denoiser_params) / batch
    if stage in (1, 2) and cfg.model.get('posterior') is not None:
        num_classes = backbone.denoiser.num_classes
        k = candidate_count(cfg, num_classes)
        s = teacher_evaluations(cfg)
        distilled = min(cfg.model.get('distill_images') or batch, batch)
        interval = teacher_interval(cfg)
        per_row = row + (adjust if cfg.model.get('teacher_adjust', True) else 0.0)
        per_image = enc + k * s * per_row
        cost.teacher = distilled * per_image / batch / interval
        cost.teacher_literal = (distilled * (enc + k * LITERAL_CHAIN_EVALS * per_row) / batch /
                                interval)
        # Data parallel: process r distils the images r, r + W, ... of the first distill_images
        # (GenRep's local_share); the iteration waits for the busiest.
        busiest = -(-distilled // NUM_GPUS) * per_image / interval
        cost.teacher_busiest = busiest / (cost.without_teacher * batch / NUM_GPUS)
        cost.teacher_rows = (f'{distilled} img x K={k} x S={s}' +
                             (f', 1 iter in {interval}' if interval > 1 else ''))
    return cost


# -- the card -----------------------------------------------------------------------------------
def gpu_time(flops_per_image: float, cost: Cost, mfu: float):
    """(seconds per iteration on NUM_GPUS H100s, GPU hours of the schedule)."""
    throughput = H100_BF16_DENSE * mfu
    per_iteration = flops_per_image * cost.batch
    return per_iteration / NUM_GPUS / throughput, per_iteration * cost.iters / throughput / 3600


def fmt_tflop(value: Optional[float]) -> str:
    return 'n/c' if value is None else f'{value / TERA:.2f}'


def fmt_share(value: Optional[float]) -> str:
    return '-' if value is None else f'{100 * value:.1f}%'


def card(costs: List[Cost], mfu: float) -> str:
    lines = [
        '| config | stage | input | batch x iters | perception | head | teacher | generation | '
        'semantic | align+EMA | total | x floor | teacher share | busiest-GPU share | '
        'literal-chain share | '
        'teacher rows | act. GiB/img | s/iter (8 H100) | GPU h |',
        '|' + '---|' * 19]
    for c in costs:
        seconds, hours = gpu_time(c.total, c, mfu)
        lines.append(
            f'| {c.config} | {c.stage} | {c.input_shape[0]}x{c.input_shape[1]} | '
            f'{c.batch} x {c.iters // 1000}k | {fmt_tflop(c.perception)} | {fmt_tflop(c.head)} | '
            f'{fmt_tflop(c.teacher)} | {fmt_tflop(c.generation)} | {fmt_tflop(c.semantic)} | '
            f'{c.alignment / TERA:.4f} | {fmt_tflop(c.total)} | '
            f'{"-" if c.over_floor is None else f"{c.over_floor:.2f}"} | '
            f'{fmt_share(c.teacher_share())} | '
            f'{fmt_share(c.teacher_busiest or None)} | '
            f'{fmt_share(c.teacher_share(literal=True))} | {c.teacher_rows or "-"} | '
            f'{c.activation_bytes / 2**30:.1f} | {seconds:.2f} | {hours:,.0f} |')
    notes = [f'{c.config}: {n}' for c in costs for n in c.notes]
    return '\n'.join(lines + ([''] + [f'- {n}' for n in notes] if notes else []))


def parse_args():
    parser = argparse.ArgumentParser(description='Cost card of the paper configs')
    parser.add_argument('--only', nargs='+', help='config names (default: every paper config)')
    parser.add_argument('--mfu', type=float, default=0.4,
                        help='sustained fraction of the H100 dense BF16 peak')
    parser.add_argument('--no-heads', action='store_true', help='skip the CPU head counts')
    parser.add_argument('--out', help='also write the markdown here')
    parser.add_argument('--json', help='also write the figures as JSON here')
    return parser.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(1)
    start = time.time()
    sections, results = [], []
    sustained = H100_BF16_DENSE * args.mfu / TERA
    header = (f'TFLOP per image of one training iteration (torch.utils.flop_counter, real-size '
              f'models); time at {sustained:.0f} TFLOP/s sustained a GPU (H100 SXM dense BF16 '
              f'989.4 TFLOP/s x MFU {args.mfu}); teacher share = teacher / the rest of the '
              f'stage. Paper Table 15 (ADE20K, {PAPER_TABLE15["hardware"]}): '
              f'{PAPER_TABLE15["perception_only"]} GPU h perception only, '
              f'{PAPER_TABLE15["genrep"]} with the teacher (+10.1%).')
    print(header + '\n', flush=True)
    for group, names in GROUPS:
        names = [n for n in names if not args.only or n in args.only]
        if not names:
            continue
        costs = []
        for name in names:
            try:
                costs.append(config_cost(name, heads=not args.no_heads))
            except Exception as error:
                print(f'{name}: FAILED {type(error).__name__}: {error}', flush=True)
        text = f'### {group}\n\n{card(costs, args.mfu)}\n'
        print(text, flush=True)
        sections.append(text)
        results += [dict(asdict(c), total=c.total, teacher_share=c.teacher_share(),
                         busiest_share=c.teacher_busiest or None,
                         literal_share=c.teacher_share(literal=True)) for c in costs]
    print(f'{time.time() - start:.0f} s')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(header + '\n\n' + '\n'.join(sections))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(mfu=args.mfu, peak=H100_BF16_DENSE, configs=results), f, indent=1)


if __name__ == '__main__':
    main()

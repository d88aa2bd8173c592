"""Cost of one GenRep training step against the perception-only step, as ratios measured in one run.

The models are the main job's, built from the real configs (``--perception-config``: the model of
`make perception`; ``--stage1-config`` / ``--stage2-config``: GenRep's stages):

  perception  the perception-only model of `make perception` (cross-entropy, plain OptimWrapper):
              the baseline that counts
  generation  a generation-only step (GenRep stage 0's model and loss: the diffusion loss of the
              same UNet, no semantic passes, plain OptimWrapper); perception + generation is the
              floor of a faithful stage-2 step (issue 23, part 4: two inputs, two passes), and
              each stage-2 variant is printed against it
  stage1      GenRep stage 1 (cross-entropy + L_gen_distil with the teacher)
  stage1_noteacher  stage 1 without the teacher (``posterior=None``): what the teacher costs
  summed      stage 2's two losses simply added (one backward, plain OptimWrapper)
  stage2      the GenRep stage-2 step with gradient alignment (GradientAlignOptimWrapper)
  stage2_floor  that step without the teacher and without the semantic denoiser's two no-gradient
              passes (``posterior``, ``semantic_noise``, ``rep_align`` = None): one perception
              forward, one generation forward and the two task gradients, the least a joint step
              with both losses on the whole batch costs

and the generation budget:

  stage2_budget    stage 2 with the generation loss on the first ``--generation-images`` images
                   of the batch (``generation_images``)

The stage configs' teacher reads the semantic copy (``teacher_weights='semantic'``) and, in stage 1,
runs on one iteration in N (``TeacherIntervalHook``): a variant's teacher share is printed for a
distilled step and averaged over its config's interval; its semantic-pass share leaves the
teacher's passes out.

Variants are timed in interleaved rounds (A, B, C, ..., A, B, C, ...) on the same batch, so that a
drift of the machine's speed hits all of them alike; each variant's median step time and its spread
(the interquartile range) are printed, with the ratios of the medians to ``perception`` and the
teacher's median share of the step (``percept_teacher_time`` of the step's log).

    python benchmarks/stage2_step.py [--device cuda] [--batch 128] [--rounds 10] [--clock cpu]
"""
import argparse
import os.path as osp
import statistics
import sys
import time

# The checkout's genrep, not an installed one (as tools/train.py).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

import genrep  # noqa: F401,E402
from genrep.registry import MODELS, OPTIM_WRAPPERS  # noqa: E402

CONFIGS = dict(
    perception='configs/genrep/fmnist_unet_cls.py',
    generation='configs/genrep/fmnist_genrep_stage0.py',
    stage1='configs/genrep/fmnist_genrep_stage1.py',
    stage2='configs/genrep/fmnist_genrep_stage2.py')


class SummedLosses(torch.nn.Module):
    """A GenRep stage-2 model whose two losses are added: the joint step without alignment."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def train_step(self, data, optim_wrapper):
        with optim_wrapper.optim_context(self.model):
            data = self.model.data_preprocessor(data, True)
            losses = self.model._run_forward(data, mode='loss')
        parsed, log_vars = self.model.parse_losses(losses)
        optim_wrapper.update_params(sum(parsed.values()))
        return log_vars


def build(config: str, device, **model_options):
    """The model and optim wrapper of ``config`` (model options merged into its model)."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(model=model_options))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).to(device).train()
        wrapper_cfg = dict(cfg.optim_wrapper)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        wrapper_cfg['optimizer'] = optimizer
        wrapper = OPTIM_WRAPPERS.build({'type': 'OptimWrapper', **wrapper_cfg})
    return model, wrapper


def variants(args, device):
    plain = dict(type='OptimWrapper')
    perception, perception_wrapper = build(args.perception_config, device)
    generation, generation_wrapper = build(args.generation_config, device)
    stage1, stage1_wrapper = build(args.stage1_config, device)
    noteacher, noteacher_wrapper = build(args.stage1_config, device, posterior=None,
                                         teacher_weights='unified')
    stage2, stage2_wrapper = build(args.stage2_config, device)
    floor, floor_wrapper = build(args.stage2_config, device, posterior=None, semantic_noise=None,
                                 rep_align=None, teacher_weights='unified')
    budget, budget_wrapper = build(args.stage2_config, device,
                                   generation_images=args.generation_images)
    summed_model, _ = build(args.stage2_config, device)
    summed_wrapper = OPTIM_WRAPPERS.build(
        dict(plain, optimizer=torch.optim.AdamW(summed_model.parameters(), lr=1e-4)))
    # The semantic copy starts as the unified denoiser, as SemanticEMAHook sets it.
    for model in (stage1, stage2, summed_model, budget):
        model.semantic_denoiser.load_state_dict(model.denoiser.state_dict())
    return dict(
        perception=(perception, perception_wrapper),
        generation=(generation, generation_wrapper),
        stage1=(stage1, stage1_wrapper),
        stage1_noteacher=(noteacher, noteacher_wrapper),
        summed=(SummedLosses(summed_model), summed_wrapper),
        stage2=(stage2, stage2_wrapper),
        stage2_floor=(floor, floor_wrapper),
        stage2_budget=(budget, budget_wrapper))


def teacher_interval(config: str) -> int:
    """One iteration in how many runs the config's teacher (its ``TeacherIntervalHook``; 1
    without one)."""
    for hook in Config.fromfile(config).get('custom_hooks', []):
        if hook['type'] in ('TeacherIntervalHook', 'genrep.TeacherIntervalHook'):
            return hook['interval']
    return 1


class PassTimer:
    """Seconds spent in a module's forward passes (forward hooks; ``always_call``: a pass that
    ends early, ``forward_feature``, counts too)."""

    def __init__(self, module, clock):
        self.seconds, self.clock, self._start = 0.0, clock, None
        module.register_forward_pre_hook(self._begin)
        module.register_forward_hook(self._end, always_call=True)

    def _begin(self, *_):
        self._start = self.clock()

    def _end(self, *_):
        if self._start is not None:
            self.seconds += self.clock() - self._start
            self._start = None

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class CallTimer:
    """Seconds spent in one method of one object (its instance attribute, wrapped here): the
    teacher's estimate, ``PosteriorEstimator._log_likelihood``, which every reading implements."""

    def __init__(self, owner, method: str, clock):
        self.seconds, self.clock = 0.0, clock
        wrapped = getattr(owner, method)

        def timed(*args, **kwargs):
            start = self.clock()
            try:
                return wrapped(*args, **kwargs)
            finally:
                self.seconds += self.clock() - start

        setattr(owner, method, timed)

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def timed_step(model, wrapper, data, device, clock=time.perf_counter):
    """Seconds of one training step and the teacher's seconds in it (0 without a teacher; the
    teacher's are wall seconds, logged by the model)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = clock()
    log_vars = model.train_step(data, wrapper)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return clock() - start, float(log_vars.get('percept_teacher_time', 0.0))


def quartiles(values):
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0], 0, values[0])
    return q1, q3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=128, help='the main job trains at 128')
    parser.add_argument('--rounds', type=int, default=10, help='timed rounds (after 2 warm-up)')
    parser.add_argument('--only', nargs='+', help='variants to run (default: all)')
    parser.add_argument('--generation-images', type=int, default=32,
                        help='generation_images of the stage2_budget variant')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help="'cpu': the process's CPU seconds (time.process_time), which other "
                        'jobs on a loaded machine disturb less than wall seconds (CPU device, '
                        "one thread; the teacher's share: its estimate's CPU seconds)")
    parser.add_argument('--perception-config', default=CONFIGS['perception'])
    parser.add_argument('--generation-config', default=CONFIGS['generation'])
    parser.add_argument('--stage1-config', default=CONFIGS['stage1'])
    parser.add_argument('--stage2-config', default=CONFIGS['stage2'])
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.clock == 'cpu' and device.type != 'cpu':
        parser.error('--clock cpu measures a CPU device only')
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    torch.manual_seed(0)
    data = dict(
        inputs=[torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8) for _ in range(args.batch)],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(args.batch)])
    # The configs pad to 32 x 32 in the pipeline; do it here.
    data['inputs'] = [torch.nn.functional.pad(x, (2, 2, 2, 2)) for x in data['inputs']]

    runs = variants(args, device)
    if args.only:
        runs = {name: runs[name] for name in args.only}
    times = {name: [] for name in runs}
    shares = {name: [] for name in runs}
    semantic_shares = {name: [] for name in runs}
    # the semantic denoiser's no-grad passes (x_sem at x_t, the alignment target at x_0)
    timers = {name: PassTimer(model.semantic_denoiser, clock) for name, (model, _) in runs.items()
              if getattr(model, 'semantic_denoiser', None) is not None}
    # CPU clock: the teacher's CPU seconds are those of its posterior's estimate (all its denoiser
    # passes and its math), since the step's log holds wall seconds, which other jobs inflate
    teacher_timers = {name: CallTimer(model.posterior, '_log_likelihood', clock)
                      for name, (model, _) in runs.items()
                      if args.clock == 'cpu' and getattr(model, 'posterior', None) is not None}
    for round_index in range(args.rounds + 2):
        for name, (model, wrapper) in runs.items():
            seconds, teacher = timed_step(model, wrapper, data, device, clock)
            semantic = timers[name].take() if name in timers else 0.0
            if name in teacher_timers:
                teacher = teacher_timers[name].take()
            if getattr(model, 'teacher_weights', 'unified') == 'semantic':
                semantic = max(semantic - teacher, 0.0)  # the teacher's passes are its own
            if round_index >= 2:  # warm-up rounds
                times[name].append(seconds)
                shares[name].append(teacher / seconds)
                semantic_shares[name].append(semantic / seconds)

    threads = torch.get_num_threads()
    print(f'device={device} threads={threads} batch={args.batch} rounds={args.rounds} '
          f'(interleaved) clock={args.clock}')
    base = statistics.median(times['perception']) if 'perception' in times else None
    floor = (base + statistics.median(times['generation'])
             if base and 'generation' in times else None)
    intervals = dict(stage1=teacher_interval(args.stage1_config))
    for name in times:
        if name.startswith('stage2') or name == 'summed':
            intervals[name] = teacher_interval(args.stage2_config)
    for name, values in times.items():
        median = statistics.median(values)
        q1, q3 = quartiles(values)
        ratio = f'x{median / base:5.2f} vs perception' if base else ''
        interval = intervals.get(name, 1)
        share = statistics.median(shares[name])
        # averaged over the interval: one distilled step, interval - 1 steps without the teacher
        averaged = share / (interval * (1 - share) + share) if share else 0.0
        if floor and name.startswith('stage2'):
            amortised = median * (1 - share) + median * share / interval
            ratio += f'  x{median / floor:5.2f} vs floor'
            if interval > 1:
                ratio += f' (x{amortised / floor:5.2f} over the interval)'
        teacher = f'teacher {share:4.0%}'
        if interval > 1 and share:
            teacher += f' ({averaged:4.1%} over 1 step in {interval})'
        print(f'{name:>17}: median {median * 1e3:8.1f} ms/step  IQR [{q1 * 1e3:7.1f}, '
              f'{q3 * 1e3:7.1f}]  {ratio}  {teacher}'
              f'  semantic passes {statistics.median(semantic_shares[name]):4.0%}')
    if floor:
        print(f'floor (perception + generation): {floor * 1e3:.1f} ms/step')


if __name__ == '__main__':
    main()

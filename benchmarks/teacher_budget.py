"""The teacher budgets of the paper configs against the exact posterior of the analytic oracle of
``benchmarks/teacher.py`` (isotropic and mixture classes), each beside the literal chain
(Algorithm 1: components='chain', combine='mixture') and the denoising error of Li et al. (the same
noise and timestep for every class) at the same number of denoiser calls a class.

For each budget S (denoiser calls per image and class) it prints, per oracle problem, the argmax
agreement with the exact posterior and KL(exact || estimate) at the best temperature of a grid
(``benchmarks.teacher.fitted_kl``), and the mean over problems:

    python benchmarks/teacher_budget.py [--images 256]

The shipped budget is ``SHIPPED`` (configs/_base_/models/stable_diffusion_teacher.py and the
stage-1 configs, docs/paper_cost.md); ``(T', m, k)`` as in ``ReverseChainPosterior``. S = 75 rows:
the configs' teacher before the budgets and Algorithm 1's chain as written (200 calls a class).
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.teacher import SCHEDULER, agreement, fitted_kl, mixture_problem  # noqa: E402
from genrep.diffusion.posteriors import DenoisingErrorPosterior, ReverseChainPosterior  # noqa
from genrep.diffusion.schedule import DiffusionSchedule  # noqa: E402

PROBLEMS = [(kind, shape, sep) for kind in ('isotropic', 'mixture')
            for shape in ((1, 4, 4), (1, 8, 8)) for sep in (0.5, 1.0)]
# (T', m, k) of the forward-noised readings with S = 2, 4, 6 kept steps: late (the low-noise end)
# and middle-to-low placements (what the Fashion-MNIST denoiser preferred, docs/decisions.md).
PLACEMENTS = {
    2: [(10, 8, 1), (10, 6, 2), (20, 14, 3), (4, 2, 1)],
    4: [(20, 16, 1), (20, 12, 2), (20, 8, 3), (10, 2, 2)],
    6: [(20, 14, 1), (20, 8, 2), (40, 22, 3), (20, 2, 3)],
}
# The budgets the configs ship (see SHIPPED_NOTE in the docs): reading, (T', m, k).
SHIPPED = {2: ('geometric', (10, 6, 2))}


def chain(steps, burn_in, thinning, **kwargs):
    return ReverseChainPosterior(DiffusionSchedule(SCHEDULER, steps), burn_in=burn_in,
                                 thinning=thinning, seed=0, **kwargs)


def estimators(budget):
    """(name, setting, estimator) at ``budget`` denoiser calls a class."""
    if budget == 75:  # the paper configs' teacher before the budgets, and Algorithm 1 as written
        return [('forward+geometric (the configs before)', '(200,50,2)',
                 chain(200, 50, 2, combine='geometric', antithetic=False)),
                ('literal chain (Alg. 1), 200 calls', '(200,50,2)',
                 chain(200, 50, 2, components='chain', combine='mixture'))]
    rows = [('literal chain (Alg. 1)', f'({budget},0,1)',
             chain(budget, 0, 1, components='chain', combine='mixture')),
            ('denoising error (Li et al.)', f"T'={budget}",
             DenoisingErrorPosterior(DiffusionSchedule(SCHEDULER, budget), seed=0))]
    for steps, m, k in PLACEMENTS[budget]:
        for combine in ('geometric', 'uniform'):
            for antithetic in (False, True):
                est = chain(steps, m, k, combine=combine, antithetic=antithetic)
                assert est.num_evaluations() == budget, (steps, m, k)
                name = f'forward+{combine}' + (', antithetic' if antithetic else '')
                rows.append((name, f'({steps},{m},{k})', est))
    return rows


def run(num_images):
    results = []
    for kind, shape, sep in PROBLEMS:
        x, _, denoiser, exact = mixture_problem(kind, num_images, shape, sep=sep)
        for budget in list(PLACEMENTS) + [75]:
            for name, setting, est in estimators(budget):
                log_lik = est.log_likelihood(denoiser, x)
                results.append(dict(kind=kind, dims=x[0].numel(), sep=sep, budget=budget,
                                    estimator=name, setting=setting,
                                    agree=agreement(log_lik, exact),
                                    kl=fitted_kl(log_lik, exact)[0]))
    return results


def summary(results):
    """Mean agreement and KL over the problems of each (budget, estimator, setting)."""
    keys = sorted({(r['budget'], r['estimator'], r['setting']) for r in results})
    lines = ['| S | estimator | (T\', m, k) | agreement (isotropic) | KL (isotropic) | '
             'agreement (mixture) | KL (mixture) |', '|---|---|---|---|---|---|---|']
    for key in keys:
        rows = [r for r in results if (r['budget'], r['estimator'], r['setting']) == key]
        cells = []
        for kind in ('isotropic', 'mixture'):
            part = [r for r in rows if r['kind'] == kind]
            cells += [f"{sum(r['agree'] for r in part) / len(part):.3f}",
                      f"{sum(r['kl'] for r in part) / len(part):.3f}"]
        shipped = SHIPPED.get(key[0])
        mark = (' (shipped)' if shipped and key[1] == f'forward+{shipped[0]}, antithetic'
                and key[2] == '({},{},{})'.format(*shipped[1]) else '')
        lines.append(f'| {key[0]} | {key[1]}{mark} | {key[2]} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=256, help='inputs per problem')
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    results = run(args.images)
    print(f'means over {len(PROBLEMS) // 2} problems a kind (D = 16, 64; separation 0.5, 1.0), '
          f'{args.images} images each, 4 classes, tau fitted on a grid\n')
    print(summary(results))
    print(f'\n{time.time() - start:.0f} s')


if __name__ == '__main__':
    main()

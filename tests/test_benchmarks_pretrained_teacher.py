"""benchmarks/pretrained_teacher.py's budgets merged into the main job's stage-1 config: each names
the reading and the number of denoiser evaluations a class it claims, whatever the config's own
teacher is (a budget of the other reading replaces the config's posterior, none of its keys kept)."""
import os.path as osp

import pytest
from mmengine.config import Config

from benchmarks.pretrained_teacher import posterior_options
from genrep.registry import POSTERIORS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MAIN_STAGE1 = osp.join(ROOT, 'configs/genrep/fmnist_genrep_stage1.py')


def posterior_of(budget: str):
    cfg = Config.fromfile(MAIN_STAGE1)
    cfg.merge_from_dict(posterior_options(budget))
    return POSTERIORS.build(dict(cfg.model.posterior, _scope_='genrep'))


@pytest.mark.parametrize('budget,reading,evaluations', [
    ('main', 'DenoisingErrorPosterior', 20),
    ('error:100', 'DenoisingErrorPosterior', 100),
    ('error:500', 'DenoisingErrorPosterior', 500),
    ('20', 'ReverseChainPosterior', 20),
    ('100', 'ReverseChainPosterior', 100),
    ('50,10,10', 'ReverseChainPosterior', 4),
])
def test_budget_builds_its_reading(budget, reading, evaluations):
    posterior = posterior_of(budget)
    assert type(posterior).__name__ == reading
    assert posterior.num_evaluations() == evaluations


def test_main_budget_is_the_configs_own_teacher():
    """'main' keeps the stage-1 config's temperature; the other budgets read at temperature 1
    (the benchmark fits its own)."""
    assert posterior_of('main').temperature == Config.fromfile(MAIN_STAGE1).model.posterior[
        'temperature']
    assert posterior_of('error:100').temperature == 1.0

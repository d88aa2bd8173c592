"""TeacherIntervalHook: GenRep's teacher runs on one iteration in ``interval`` (the budget of
docs/paper_cost.md that spreads the teacher over every process), at the configured images; the
other iterations evaluate no denoiser row for it and their distillation loss is zero."""
import pytest
from mmengine.runner import Runner

from genrep.engine import TeacherIntervalHook


def test_teacher_on_every_second_iteration(stage1_training_cfg):
    cfg = stage1_training_cfg(custom_hooks=[dict(type='genrep.TeacherIntervalHook', interval=2)])
    runner = Runner.from_cfg(cfg)
    runner.train()

    model = runner.model
    assert model.distill_images == 2  # the budget is back after training
    full = 2 * (1 + model.num_candidates) * model.posterior.num_evaluations()
    hub = runner.message_hub  # per iteration (the log shows running means)
    evals, distil = (list(hub.get_scalar(f'train/percept_{key}').data[0])
                     for key in ('teacher_evals', 'loss_gen_distil'))
    assert evals == [full, 0]
    assert distil[0] > 0 and distil[1] == 0.0  # the undistilled iteration: cross-entropy alone


def test_arguments_and_model_are_checked():
    with pytest.raises(ValueError, match='interval must be an int >= 1'):
        TeacherIntervalHook(interval=0)
    with pytest.raises(ValueError, match=r'offset must be in \[0, 4\)'):
        TeacherIntervalHook(interval=4, offset=4)

    class Runner_:
        model = object()
        iter = 0

    with pytest.raises(TypeError, match='needs a GenRep model with a posterior'):
        TeacherIntervalHook(interval=2).before_train(Runner_())

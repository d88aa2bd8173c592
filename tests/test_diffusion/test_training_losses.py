"""training_losses, the diffusion loss of a batch (DiT's ``training_losses``): its draws and terms
against the same computation written out by hand with the same per-sample generators."""
import torch
import torch.nn.functional as F
from tiny_models import unet2d_cfg

from genrep.diffusion import DiffusionSchedule, SampleGenerators, UNet2DDenoiser, training_losses

SCHEDULER = dict(num_train_timesteps=20, beta_schedule='linear', beta_start=1e-3, beta_end=0.2,
                 variance_type='learned_range', clip_sample=False)


def test_terms_equal_the_hybrid_loss_by_hand():
    torch.manual_seed(0)
    denoiser = UNet2DDenoiser(config=unet2d_cfg(num_classes=3, learn_sigma=True)['config'])
    schedule = DiffusionSchedule(SCHEDULER)
    x0 = torch.rand(4, 1, 16, 16) * 2 - 1
    labels = torch.tensor([0, 1, 2, 1])
    null = denoiser.null_class_id
    shift = []

    def adjust(mean, log_var, x_t, index, timesteps, class_labels):
        shift.append(class_labels)
        return mean + 0.1, log_var

    got = training_losses(schedule, denoiser, x0, labels, SampleGenerators([5, 6, 7, 8]), null,
                          label_dropout=0.5, vlb_weight=0.3, adjust=adjust)

    # By hand: dropout, index, noise from each sample's generator in that order.
    draws = SampleGenerators([5, 6, 7, 8])
    dropped = torch.where(draws.rand() < 0.5, torch.full_like(labels, null), labels)
    index = draws.randint(schedule.num_steps)
    noise = draws.randn(x0.shape)
    x_t = schedule.q_sample(x0, index, noise)
    out = denoiser.forward_features(x_t, schedule.timesteps[index], dropped)
    torch.testing.assert_close(got.class_labels, dropped)
    assert torch.equal(shift[0], dropped)  # the hook sees the labels the denoiser saw
    torch.testing.assert_close(got.mse, F.mse_loss(out.eps, noise))
    step = schedule.p_mean_variance(torch.cat([out.eps.detach(), out.var_values], 1), x_t, index)
    vlb = schedule.vb_terms(x0, x_t, index, step['mean'] + 0.1, step['log_variance']).mean()
    torch.testing.assert_close(got.vlb, 0.3 * vlb)
    torch.testing.assert_close(got.features[-1], out.features[-1])
    # The bound reaches the variance, not the mean's eps.
    got.vlb.backward()
    assert denoiser.model.conv_out.weight.grad[:1].abs().sum() == 0
    assert denoiser.model.conv_out.weight.grad[1:].abs().sum() > 0


def test_no_bound_without_a_variance_or_an_adjustment():
    torch.manual_seed(0)
    denoiser = UNet2DDenoiser(config=unet2d_cfg(num_classes=3)['config'])
    schedule = DiffusionSchedule(dict(SCHEDULER, variance_type='fixed_small'))
    got = training_losses(schedule, denoiser, torch.zeros(2, 1, 16, 16), torch.tensor([0, 1]),
                          SampleGenerators([1, 2]), denoiser.null_class_id)
    assert got.vlb is None and got.mse.ndim == 0

"""Flow matching: the path and its velocity by hand, the clean prediction's velocity, guidance
arithmetic, what dropping the condition does, the sampler's shapes, determinism and last step,
a short training run that learns two conditions apart, and bad input."""

import pytest
import torch

from mmlib.models.flow import (
    MIN_GAP,
    FlowDenoiser,
    flow_loss,
    guided,
    interpolate,
    sample,
    velocity_from_clean,
    velocity_target,
)
from tests.bad_input import raises_naming


def test_the_path_and_its_velocity_by_hand():
    x1, x0 = torch.tensor([[2.0, -1.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.equal(interpolate(x1, x0, torch.tensor([0.0])), x0)  # noise at t = 0
    assert torch.equal(interpolate(x1, x0, torch.tensor([1.0])), x1)  # data at t = 1
    quarter = interpolate(x1, x0, torch.tensor([0.25]))
    torch.testing.assert_close(quarter, torch.tensor([[0.5, 2.0]]))
    assert torch.equal(velocity_target(x1, x0), torch.tensor([[2.0, -4.0]]))
    # the path's velocity, by finite differences
    ts = torch.tensor([0.3]), torch.tensor([0.3 + 1e-3])
    slope = (interpolate(x1, x0, ts[1]) - interpolate(x1, x0, ts[0])) / 1e-3
    torch.testing.assert_close(slope, velocity_target(x1, x0), atol=1e-2, rtol=0)


def test_the_clean_prediction_gives_the_path_velocity():
    torch.manual_seed(0)
    x1, x0, t = torch.randn(5, 3), torch.randn(5, 3), torch.rand(5) * 0.9
    x_t = interpolate(x1, x0, t)
    torch.testing.assert_close(velocity_from_clean(x1, x_t, t), velocity_target(x1, x0))
    near_one = torch.full((5,), 0.99)  # 1 - t floored at MIN_GAP
    x_t = interpolate(x1, x0, near_one)
    torch.testing.assert_close(velocity_from_clean(x1, x_t, near_one), (x1 - x_t) / MIN_GAP)


def test_guidance_arithmetic():
    cond, uncond = torch.tensor([3.0, 1.0]), torch.tensor([1.0, 1.0])
    assert torch.equal(guided(cond, uncond, 0.0), uncond)
    assert torch.equal(guided(cond, uncond, 1.0), cond)
    assert torch.equal(guided(cond, uncond, 2.0), torch.tensor([5.0, 1.0]))  # past cond


def tiny(**kw):
    torch.manual_seed(0)
    return FlowDenoiser(data_dim=6, cond_dim=4, hidden=32, depth=2, **kw)


def test_dropping_the_condition_is_the_unconditional_model():
    model = tiny()
    with torch.no_grad():
        model.null.normal_()
    x, t, cond = torch.randn(3, 6), torch.rand(3), torch.randn(3, 4)
    drop = torch.tensor([True, False, True])
    out = model(x, t, cond, drop)
    assert out.shape == (3, 6)
    torch.testing.assert_close(out[drop], model(x, t)[drop])
    torch.testing.assert_close(out[~drop], model(x, t, cond)[~drop])


def test_sampler_shapes_determinism_and_last_step():
    model = tiny()
    cond = torch.randn(5, 4)
    a = sample(model, cond, steps=4, generator=torch.Generator().manual_seed(1))
    b = sample(model, cond, steps=4, generator=torch.Generator().manual_seed(1))
    c = sample(model, cond, steps=4, generator=torch.Generator().manual_seed(2))
    assert a.shape == (5, 6) and torch.equal(a, b) and not torch.equal(a, c)

    class Fixed(FlowDenoiser):  # always predicts the same clean sample
        def forward(self, x_t, t, cond=None, drop=None):
            return torch.arange(6.0).expand(len(x_t), -1)

    fixed = Fixed(data_dim=6, cond_dim=4)
    for steps in (1, 3, int(1 / MIN_GAP)):
        out = sample(fixed, cond, steps=steps, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, torch.arange(6.0).expand(5, -1))
    path = []
    last = sample(model, cond, steps=4, generator=torch.Generator().manual_seed(1), path=path)
    assert len(path) == 5 and torch.equal(path[-1], last)
    noise = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(path[0], noise)  # the way starts at the noise
    given = sample(model, cond, steps=4, noise=noise, generator=torch.Generator().manual_seed(9))
    assert torch.equal(given, last)  # a given start replaces the generator's draw
    clipped = sample(fixed, cond, steps=3, clip=(-1.0, 2.0))  # static thresholding
    torch.testing.assert_close(clipped, torch.arange(6.0).clamp(-1, 2).expand(5, -1))


def test_a_short_run_learns_two_conditions_apart():
    """Two 'captions', each with its own image: after training, guided samples land near their
    own caption's image (about a second of training)."""
    torch.manual_seed(0)
    images = torch.tensor([[1.0, 1.0, -1.0, -1.0, 1.0, -1.0], [-1.0, -1.0, 1.0, 1.0, -1.0, 1.0]])
    captions = torch.eye(2, 4)
    model = FlowDenoiser(data_dim=6, cond_dim=4, hidden=64, depth=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    which = torch.arange(32) % 2
    for _ in range(300):
        loss = flow_loss(model, images[which], captions[which], generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = sample(model, captions[which[:8]], steps=8, generator=torch.Generator().manual_seed(3))
    nearest = torch.cdist(out, images).argmin(dim=1)
    assert torch.equal(nearest, which[:8])
    assert (out - images[which[:8]]).abs().max() < 0.3


def test_bad_input():
    model = tiny()
    x, t, cond = torch.randn(3, 6), torch.rand(3), torch.randn(3, 4)
    with raises_naming(ValueError, "x_t"):
        model(torch.randn(3, 5), t, cond)
    with raises_naming(ValueError, "t"):
        model(x, torch.rand(2), cond)
    with raises_naming(TypeError, "t"):
        model(x, torch.zeros(3, dtype=torch.long), cond)
    with raises_naming(ValueError, "cond"):
        model(x, t, torch.randn(3, 5))
    with raises_naming(TypeError, "drop"):
        model(x, t, cond, torch.zeros(3))
    with raises_naming(ValueError, "time_dim"):
        FlowDenoiser(6, 4, time_dim=7)
    with raises_naming(ValueError, "hidden"):
        FlowDenoiser(6, 4, hidden=0)
    with raises_naming(ValueError, "drop_prob"):
        flow_loss(model, x, cond, drop_prob=1.5)
    with raises_naming(TypeError, "model"):
        flow_loss(torch.nn.Linear(6, 6), x, cond)
    with raises_naming(ValueError, "x1"):
        flow_loss(model, torch.randn(3, 2, 3), cond)
    with raises_naming(ValueError, "steps"):
        sample(model, cond, steps=0)
    with raises_naming(ValueError, "scale"):
        sample(model, cond, scale=-1.0)
    with raises_naming(ValueError, "cond"):
        sample(model, torch.randn(3, 5))
    with raises_naming(ValueError, "clip"):
        sample(model, cond, clip=(1.0, -1.0))
    with raises_naming(TypeError, "path"):
        sample(model, cond, path=())
    with raises_naming(ValueError, "noise"):
        sample(model, cond, noise=torch.randn(3, 5))


@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0])
def test_sampling_is_finite_at_any_guidance(scale):
    out = sample(tiny(), torch.randn(4, 4), steps=5, scale=scale)
    assert torch.isfinite(out).all()

"""Layers and the update rule on the from-scratch engine, against torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlib.maths.autograd import Tensor, cat, cross_entropy
from mmlib.maths.layers import MLP, Linear, sgd_step
from tests.bad_input import raises_naming

SEEDS = [0, 1, 2]
TOL = dict(rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_fusion_mlp_matches_torch(seed, activation, fusion_problem):
    text, image, targets = fusion_problem(seed)
    model = MLP([9, 7, 3], activation=activation, seed=seed)
    t_text, t_image = (Tensor(text), Tensor(image))
    loss = cross_entropy(model(cat([t_text, t_image], axis=1)), targets)
    loss.backward()

    # The same computation in torch, on copies of the parameters.
    params = [torch.tensor(p.data, requires_grad=True) for p in model.parameters()]
    inputs = [torch.tensor(a, requires_grad=True) for a in (text, image)]
    h = getattr(torch, activation)(torch.cat(inputs, dim=1) @ params[0] + params[1])
    tloss = F.cross_entropy(h @ params[2] + params[3], torch.from_numpy(targets))
    tloss.backward()

    np.testing.assert_allclose(loss.item(), tloss.item(), **TOL)
    for mine, theirs in zip(
        [*model.parameters(), t_text, t_image], [*params, *inputs], strict=True
    ):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), **TOL)


def test_linear_weight_is_the_transpose_of_torch_linear():
    layer = Linear(4, 2, rng=np.random.default_rng(0))
    torch_layer = torch.nn.Linear(4, 2).double()
    with torch.no_grad():
        torch_layer.weight.copy_(torch.from_numpy(layer.weight.data.T))
        torch_layer.bias.copy_(torch.from_numpy(layer.bias.data))
    x = np.random.default_rng(1).normal(size=(3, 4))
    expected = torch_layer(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, **TOL)
    assert np.abs(layer.weight.data).max() <= 0.5  # U(-1/sqrt(4), 1/sqrt(4))


def test_sgd_step_is_exactly_minus_lr_times_grad():
    model = MLP([3, 4, 2], seed=0)
    cross_entropy(model(Tensor(np.ones((2, 3)))), [0, 1]).backward()
    before = [(p.data.copy(), p.grad.copy()) for p in model.parameters()]
    sgd_step(model.parameters(), lr=0.3)
    for p, (data, grad) in zip(model.parameters(), before, strict=True):
        assert np.abs(grad).max() > 0
        np.testing.assert_array_equal(p.data, data - 0.3 * grad)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_training_a_fusion_mlp_drives_the_loss_down():
    """Labels depend on text and image features together; SGD on the rule above learns them."""
    rng = np.random.default_rng(0)
    text, image = rng.normal(size=(64, 6)), rng.normal(size=(64, 4))
    targets = np.argmax(text[:, :3] + image[:, :3], axis=1)  # needs both modalities
    model = MLP([10, 16, 3], seed=0)
    x = cat([Tensor(text), Tensor(image)], axis=1)
    losses = []
    for _ in range(200):
        model.zero_grad()
        loss = cross_entropy(model(x), targets)
        loss.backward()
        sgd_step(model.parameters(), lr=0.5)
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    accuracy = (model(x).data.argmax(axis=1) == targets).mean()
    assert accuracy > 0.9


def test_bad_inputs_are_rejected_naming_the_argument():
    a = Tensor(np.ones((4, 3)))
    cases = [
        (ValueError, "lr", lambda: sgd_step([a], lr=-1.0)),
        (TypeError, "lr", lambda: sgd_step([a], lr="0.1")),
        (TypeError, "params", lambda: sgd_step([np.ones(3)], lr=0.1)),
        (TypeError, "params", lambda: sgd_step(3, lr=0.1)),
        (TypeError, "sizes", lambda: MLP([3])),
        (ValueError, "activation", lambda: MLP([3, 2], activation="gelu")),
        (ValueError, "in_features", lambda: MLP([0, 2])),
        (ValueError, "out_features", lambda: MLP([3, 0])),
        (ValueError, "seed", lambda: MLP([3, 2], seed=-1)),
        (TypeError, "x", lambda: MLP([3, 2])(np.ones((2, 3)))),
        (TypeError, "x", lambda: MLP([3, 2])(Tensor(np.ones(3)))),
        (TypeError, "rng", lambda: Linear(3, 2, rng=0)),
    ]
    for error, argument, call in cases:
        with raises_naming(error, argument):
            call()

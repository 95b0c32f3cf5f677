"""The from-scratch autodiff engine against torch.autograd and finite differences."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlib.maths.autograd import Tensor, cat, cross_entropy, numerical_grad
from mmlib.maths.layers import MLP, Linear, sgd_step

SEEDS = [0, 1, 2]
TOL = dict(rtol=1e-9, atol=1e-9)


def pair(rng, *shape, low=-2.0, high=2.0):
    """The same random array as a leaf of this engine and as a float64 torch leaf."""
    array = rng.uniform(low, high, shape)
    return Tensor(array), torch.tensor(array, dtype=torch.float64, requires_grad=True)


def check_same(ours, theirs, leaves, seed):
    """Reduce both outputs with the same random weights, backprop, compare value and grads."""
    weights = np.random.default_rng(seed + 100).normal(size=ours.shape)
    (ours * weights).sum().backward()
    (theirs * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **TOL)
    for mine, torchs in leaves:
        np.testing.assert_allclose(mine.grad, torchs.grad.numpy(), **TOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("b_shape", ["(B, D)", "(D,)", "(1, D)", "(B, 1)", "()"])
def test_elementwise_with_broadcasting_matches_torch(seed, b_shape):
    rng = np.random.default_rng(seed)
    batch, dim = rng.integers(1, 6, size=2)
    shape = eval(b_shape, {"B": batch, "D": dim})
    ops = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "radd": lambda a, b: b + a,  # the broadcast operand on the left
        "rsub": lambda a, b: 2.5 - a * b,
        "neg": lambda a, b: -(a * b),
    }
    for op in ops.values():
        (a, ta), (b, tb) = pair(rng, batch, dim), pair(rng, *shape)
        check_same(op(a, b), op(ta, tb), [(a, ta), (b, tb)], seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_matmul_matches_torch(seed):
    rng = np.random.default_rng(seed)
    n, k, m = rng.integers(1, 7, size=3)
    (a, ta), (b, tb) = pair(rng, n, k), pair(rng, k, m)
    check_same(a @ b, ta @ tb, [(a, ta), (b, tb)], seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("axis", [1, 0, -1])
def test_cat_matches_torch(seed, axis):
    rng = np.random.default_rng(seed)
    batch = int(rng.integers(1, 5))
    widths = rng.integers(1, 5, size=3)
    leaves = [pair(rng, *((batch, w) if axis != 0 else (w, batch))) for w in widths]
    mine, torchs = [m for m, _ in leaves], [t for _, t in leaves]
    ours = cat([*mine, mine[0]], axis=axis)  # the first input twice: its two slices add up
    theirs = torch.cat([*torchs, torchs[0]], dim=axis)
    check_same(ours.tanh(), theirs.tanh(), leaves, seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", ["tanh", "relu", "sigmoid", "exp", "log"])
def test_elementwise_functions_match_torch(seed, fn):
    rng = np.random.default_rng(seed)
    low = 0.1 if fn == "log" else -3.0
    a, ta = pair(rng, *rng.integers(1, 6, size=2), low=low, high=3.0)
    check_same(getattr(a, fn)(), getattr(torch, fn)(ta), [(a, ta)], seed)


def test_sigmoid_does_not_overflow():
    x = Tensor(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(x.sigmoid().data, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_reductions_match_torch(seed, reduce):
    rng = np.random.default_rng(seed)
    for axis, keepdims in itertools.product([None, 0, 1, -1], [False, True]):
        a, ta = pair(rng, *rng.integers(1, 6, size=2))
        ours = getattr(a, reduce)(axis=axis, keepdims=keepdims)
        dims = {"dim": axis, "keepdim": keepdims} if axis is not None else {}
        theirs = getattr(ta, reduce)(**dims)
        if keepdims and axis is None:
            theirs = theirs.reshape(1, 1)
        check_same(ours, theirs, [(a, ta)], seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_cross_entropy_matches_torch(seed, scale):
    rng = np.random.default_rng(seed)
    batch, classes = rng.integers(1, 8), rng.integers(2, 6)
    logits, tlogits = pair(rng, batch, classes, low=-scale, high=scale)
    targets = rng.integers(0, classes, size=batch)
    loss = cross_entropy(logits, targets)
    tloss = F.cross_entropy(tlogits, torch.from_numpy(targets))
    loss.backward()
    tloss.backward()
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), tloss.item(), **TOL)
    np.testing.assert_allclose(logits.grad, tlogits.grad.numpy(), **TOL)


def test_reused_node_accumulates_gradient():
    """A diamond (x feeds two branches): the topological order must sum both paths."""
    rng = np.random.default_rng(0)
    x, tx = pair(rng, 3, 4)
    y, ty = x.tanh(), tx.tanh()
    check_same(y * y + y - x, ty * ty + ty - tx, [(x, tx)], 0)


def test_backward_accumulates_like_torch_and_handles_deep_graphs():
    x = Tensor(np.array([0.5]))
    y = x
    for _ in range(3000):  # deeper than Python's recursion limit
        y = y * 1.0
    y.sum().backward()
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0])


def test_numpy_scalars_and_arrays_on_the_left():
    x = Tensor(np.ones(3))
    assert isinstance(np.ones(3) + x, Tensor) and isinstance(np.float64(2.0) * x, Tensor)
    np.testing.assert_allclose((np.arange(3) - x).data, [-1.0, 0.0, 1.0])


def fusion_problem(seed, batch=6, text_dim=5, image_dim=4, classes=3):
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(batch, text_dim))
    image = rng.normal(size=(batch, image_dim))
    return text, image, rng.integers(0, classes, size=batch)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_fusion_mlp_matches_torch(seed, activation):
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


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_match_finite_differences(seed):
    text, image, targets = fusion_problem(seed)
    model = MLP([9, 7, 3], seed=seed)
    inputs = Tensor(np.concatenate([text, image], axis=1))

    def loss():
        return cross_entropy(model(inputs), targets)

    loss().backward()
    for p in [*model.parameters(), inputs]:
        numeric = numerical_grad(lambda _: loss(), p.data)
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-5, atol=1e-7)


def test_numerical_grad_of_a_plain_function_and_restores_the_array():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    np.testing.assert_allclose(numerical_grad(lambda a: float((a**3).sum()), x), 3 * x**2)
    np.testing.assert_array_equal(x, before)


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


def test_bad_inputs_are_rejected_with_clear_messages():
    a, b = Tensor(np.ones((4, 3))), Tensor(np.ones((5, 2)))
    with pytest.raises(TypeError, match="data must be a number or a numeric array"):
        Tensor("abc")
    with pytest.raises(TypeError, match="data must be"):
        Tensor(np.array([True, False]))
    with pytest.raises(TypeError, match="other must be"):
        a + "x"
    with pytest.raises(ValueError, match=r"self of shape \(4, 3\) and other of shape \(5, 2\)"):
        a @ b
    with pytest.raises(ValueError, match=r"matmul: self must be \(N, K\)"):
        Tensor(np.ones(3)) @ Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"add: other must broadcast.*\(4, 3\).*\(5, 2\)"):
        a + b
    with pytest.raises(ValueError, match=r"tensors\[1\] must match tensors\[0\] of shape \(4, 3\)"):
        cat([a, b], axis=1)
    with pytest.raises(TypeError, match=r"tensors\[1\] must be a Tensor"):
        cat([a, np.ones((4, 3))])
    with pytest.raises(TypeError, match="tensors must be a non-empty list"):
        cat([])
    with pytest.raises(ValueError, match="axis must be one of"):
        cat([a, a], axis=2)
    with pytest.raises(ValueError, match="axis must be one of"):
        a.sum(axis=3)
    with pytest.raises(ValueError, match=r"targets must hold class ids in \[0, 3\)"):
        cross_entropy(a, [0, 1, 3, 2])
    with pytest.raises(ValueError, match=r"targets must hold class ids"):
        cross_entropy(a, [0, -1, 1, 2])
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\)"):
        cross_entropy(a, [0, 1])
    with pytest.raises(ValueError, match="logits must not be empty"):
        cross_entropy(Tensor(np.ones((0, 3))), np.zeros(0, dtype=int))
    with pytest.raises(TypeError, match="targets must be an integer array"):
        cross_entropy(a, np.zeros(4))
    with pytest.raises(TypeError, match="logits must be a 2-D Tensor"):
        cross_entropy(np.ones((4, 3)), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="backward\\(\\) needs a scalar"):
        a.backward()
    with pytest.raises(ValueError, match="item\\(\\) needs a one-element"):
        a.item()
    with pytest.raises(ValueError, match="lr must be in"):
        sgd_step([a], lr=-1.0)
    with pytest.raises(TypeError, match="lr must be a number"):
        sgd_step([a], lr="0.1")
    with pytest.raises(TypeError, match="params must be an iterable of Tensor"):
        sgd_step([np.ones(3)], lr=0.1)
    with pytest.raises(TypeError, match="array must be a float64 numpy array"):
        numerical_grad(lambda x: 0.0, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="f must be callable"):
        numerical_grad(3, np.ones(3))
    with pytest.raises(TypeError, match="sizes must be a list"):
        MLP([3])
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP([3, 2], activation="gelu")
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        MLP([0, 2])
    with pytest.raises(TypeError, match="x must be a 2-D Tensor"):
        MLP([3, 2])(np.ones((2, 3)))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        Linear(3, 2, rng=0)

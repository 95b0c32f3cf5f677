"""The from-scratch autodiff engine against torch.autograd and finite differences."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlib.maths.autograd import Tensor, cat, cross_entropy, numerical_grad
from mmlib.maths.layers import MLP
from tests.bad_input import raises_naming

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


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_match_finite_differences(seed, fusion_problem):
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


def test_bad_inputs_are_rejected_naming_the_argument():
    a, b = Tensor(np.ones((4, 3))), Tensor(np.ones((5, 2)))
    cases = [
        (TypeError, "data", lambda: Tensor("abc")),
        (TypeError, "data", lambda: Tensor(np.array([True, False]))),
        (TypeError, "other", lambda: a + "x"),
        (ValueError, "other", lambda: a @ b),
        (ValueError, "self", lambda: Tensor(np.ones(3)) @ Tensor(np.ones(3))),
        (ValueError, "other", lambda: a + b),
        (ValueError, "other", lambda: a - b),
        (ValueError, "other", lambda: a * b),
        (ValueError, "tensors", lambda: cat([a, b], axis=1)),
        (ValueError, "tensors", lambda: cat([a, Tensor(np.ones(4))], axis=0)),
        (TypeError, "tensors", lambda: cat([a, np.ones((4, 3))])),
        (TypeError, "tensors", lambda: cat([])),
        (ValueError, "axis", lambda: cat([a, a], axis=2)),
        (ValueError, "axis", lambda: a.sum(axis=3)),
        (ValueError, "targets", lambda: cross_entropy(a, [0, 1, 3, 2])),
        (ValueError, "targets", lambda: cross_entropy(a, [0, -1, 1, 2])),
        (ValueError, "targets", lambda: cross_entropy(a, [0, 1])),
        (ValueError, "logits", lambda: cross_entropy(Tensor(np.ones((0, 3))), np.zeros(0, int))),
        (TypeError, "targets", lambda: cross_entropy(a, np.zeros(4))),
        (TypeError, "logits", lambda: cross_entropy(np.ones((4, 3)), [0, 1, 2, 0])),
        (ValueError, "backward", lambda: a.backward()),
        (ValueError, "item", lambda: a.item()),
        (TypeError, "array", lambda: numerical_grad(lambda x: 0.0, np.ones(3, dtype=np.float32))),
        (TypeError, "f", lambda: numerical_grad(3, np.ones(3))),
        (ValueError, "eps", lambda: numerical_grad(lambda x: 0.0, np.ones(3), eps=0.0)),
    ]
    for error, argument, call in cases:
        with raises_naming(error, argument):
            call()

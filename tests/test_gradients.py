"""mmlib.maths.gradients: the torch twin of the engine's MLP, and gradient norms per module."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmlib.maths.autograd import Tensor, cross_entropy
from mmlib.maths.gradients import GradNormTracker, grad_norms, sgd_fit, torch_twin
from mmlib.maths.layers import MLP
from mmlib.training.batches import TensorBatches
from mmlib.training.loop import train
from tests.bad_input import raises_naming


def two_modalities(n=200, seed=0):
    """A task that needs both inputs: is the sign of text[:, 0] the sign of image[:, 0]?"""
    rng = np.random.default_rng(seed)
    text, image = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    return text, image, ((text[:, 0] > 0) == (image[:, 0] > 0)).astype(np.int64)


def test_sgd_fit_learns_a_task_that_needs_both_modalities_and_repeats():
    text, image, labels = two_modalities()
    runs = []
    for _ in range(2):
        mlp = MLP([7, 16, 2], seed=0)
        losses = sgd_fit(mlp, [text, image], labels, lr=0.5, steps=300, batch_size=32, seed=1)
        runs.append((losses, mlp.layers[0].weight.data.copy()))
    losses = runs[0][0]
    assert len(losses) == 300
    assert np.mean(losses[-30:]) < 0.5 * losses[0]
    logits = mlp(Tensor(np.concatenate([text, image], axis=1))).data
    assert (logits.argmax(1) == labels).mean() > 0.85
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])


def test_sgd_fit_with_zero_lr_changes_nothing():
    text, image, labels = two_modalities(50)
    mlp = MLP([7, 4, 2], seed=0)
    before = [p.data.copy() for p in mlp.parameters()]
    sgd_fit(mlp, [text, image], labels, lr=0.0, steps=3)
    assert all(np.array_equal(b, p.data) for b, p in zip(before, mlp.parameters(), strict=True))


def test_sgd_fit_rejects_bad_input():
    text, image, labels = two_modalities(20)
    mlp = MLP([7, 4, 2])
    good = dict(lr=0.1, steps=1)
    with raises_naming(TypeError, "mlp"):
        sgd_fit("mlp", [text, image], labels, **good)
    with raises_naming(TypeError, "features"):
        sgd_fit(mlp, text, labels, **good)
    with raises_naming(TypeError, "features"):
        sgd_fit(mlp, [], labels, **good)
    with raises_naming(TypeError, "features"):
        sgd_fit(mlp, [text, image.astype(np.int64)], labels, **good)
    with raises_naming(TypeError, "features"):
        sgd_fit(mlp, [text[:, 0], image], labels, **good)
    with raises_naming(ValueError, "features"):
        sgd_fit(mlp, [text, image[:10]], labels, **good)
    with raises_naming(ValueError, "mlp"):
        sgd_fit(MLP([6, 4, 2]), [text, image], labels, **good)
    with raises_naming(TypeError, "targets"):
        sgd_fit(mlp, [text, image], labels.astype(float), **good)
    with raises_naming(ValueError, "targets"):
        sgd_fit(mlp, [text, image], labels[:5], **good)
    with raises_naming(ValueError, "lr"):
        sgd_fit(mlp, [text, image], labels, lr=-1.0, steps=1)
    with raises_naming(ValueError, "steps"):
        sgd_fit(mlp, [text, image], labels, lr=0.1, steps=0)
    with raises_naming(TypeError, "batch_size"):
        sgd_fit(mlp, [text, image], labels, lr=0.1, steps=1, batch_size=2.0)
    with raises_naming(ValueError, "seed"):
        sgd_fit(mlp, [text, image], labels, lr=0.1, steps=1, seed=-1)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_torch_twin_matches_the_engine_in_value_and_gradient(activation):
    mlp = MLP([5, 7, 4, 3], activation=activation, seed=1)
    twin = torch_twin(mlp)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    loss = cross_entropy(mlp(Tensor(x)), y)
    loss.backward()
    twin_loss = F.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
    twin_loss.backward()
    assert abs(loss.item() - twin_loss.item()) < 1e-12
    linears = [m for m in twin if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    for layer, linear in zip(mlp.layers, linears, strict=True):
        np.testing.assert_allclose(layer.weight.grad, linear.weight.grad.numpy().T, atol=1e-12)
        np.testing.assert_allclose(layer.bias.grad, linear.bias.grad.numpy(), atol=1e-12)


def test_torch_twin_is_a_copy_with_the_asked_dtype():
    mlp = MLP([3, 2], seed=0)
    twin = torch_twin(mlp, dtype=torch.float32)
    assert twin[0].weight.dtype == torch.float32 and twin[0].weight.shape == (2, 3)
    with torch.no_grad():
        twin[0].weight.zero_()
    assert np.abs(mlp.layers[0].weight.data).sum() > 0


def test_torch_twin_rejects_bad_input():
    with raises_naming(TypeError, "mlp"):
        torch_twin(nn.Linear(3, 2))
    with raises_naming(TypeError, "dtype"):
        torch_twin(MLP([3, 2]), dtype=torch.int64)
    with raises_naming(TypeError, "dtype"):
        torch_twin(MLP([3, 2]), dtype="float32")


def test_grad_norms_of_modules_and_lists():
    a, b = nn.Linear(2, 1, bias=False), nn.Linear(2, 1, bias=False)
    a.weight.grad = torch.tensor([[3.0, 4.0]])
    c = torch.zeros(3, requires_grad=True)
    c.grad = torch.tensor([1.0, 2.0, 2.0])
    norms = grad_norms({"a": a, "b": b, "c": [c], "ac": [a.weight, c]})
    assert norms == {"a": 5.0, "b": 0.0, "c": 3.0, "ac": pytest.approx(34**0.5)}


def test_grad_norms_rejects_bad_groups():
    with raises_naming(TypeError, "groups"):
        grad_norms([nn.Linear(2, 2)])
    with raises_naming(TypeError, "groups"):
        grad_norms({})
    with raises_naming(TypeError, "groups"):
        grad_norms({1: nn.Linear(2, 2)})
    with raises_naming(TypeError, "groups"):
        grad_norms({"x": "not parameters"})
    with raises_naming(TypeError, "groups"):
        grad_norms({"x": [1.0, 2.0]})
    with raises_naming(ValueError, "groups"):
        grad_norms({"x": nn.ReLU()})


def test_tracker_records_the_gradient_of_every_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with GradNormTracker(optimizer, {"first": model[0], "last": model[2]}) as tracker:
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            seen.append(grad_norms({"first": model[0], "last": model[2]}))
            optimizer.step()
    optimizer.step()  # after remove(): not recorded
    assert tracker.norms["first"] == [s["first"] for s in seen]
    assert tracker.norms["last"] == [s["last"] for s in seen]
    assert all(v > 0 for v in tracker.norms["first"])
    assert repr(tracker) == "GradNormTracker(groups=['first', 'last'], steps=3)"


def test_tracker_works_with_train():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    tracker = GradNormTracker(optimizer, {"hidden": model[0], "out": model[2]})
    batches = TensorBatches(torch.randn(32, 4), torch.randint(0, 2, (32,)), batch_size=8)
    history = train(
        model,
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        batches,
        steps=5,
        optimizer=optimizer,
        device="cpu",
        progress=False,
    )
    assert len(history.loss) == 5
    assert [len(v) for v in tracker.norms.values()] == [5, 5]


def test_tracker_rejects_bad_input():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with raises_naming(TypeError, "optimizer"):
        GradNormTracker("sgd", {"m": model})
    with raises_naming(TypeError, "groups"):
        GradNormTracker(optimizer, model)
    with raises_naming(ValueError, "groups"):
        GradNormTracker(optimizer, {"m": model, "other": nn.Linear(2, 2)})

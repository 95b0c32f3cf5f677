"""Gradient diagnostics: deep MLPs, per-layer and per-step gradient norms, GRU gate bias."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmlib.evaluation.diagnostics import (
    deep_mlp,
    first_token_task,
    input_gradient_norms,
    layer_gradient_norms,
    set_update_gate_bias,
)
from tests.bad_input import raises_naming


def test_deep_mlp_shapes_and_layers():
    mlp = deep_mlp(4, 8, in_dim=3, out_dim=2, activation="tanh")
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 8), (8, 8), (8, 8), (8, 2)]
    assert sum(isinstance(m, nn.Tanh) for m in mlp) == 3
    assert mlp(torch.randn(5, 3)).shape == (5, 2)


def test_kaiming_init_has_he_variance_and_zero_bias():
    torch.manual_seed(0)
    mlp = deep_mlp(3, 400, activation="relu", init="kaiming")
    layer = mlp[0]
    assert torch.all(layer.bias == 0)
    assert layer.weight.var().item() == pytest.approx(2 / 400, rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"depth": 0}, ValueError, "depth"),
        ({"width": 1.5}, TypeError, "width"),
        ({"in_dim": 0}, ValueError, "in_dim"),
        ({"out_dim": "2"}, TypeError, "out_dim"),
        ({"activation": "gelu"}, ValueError, "activation"),
        ({"init": "xavier"}, ValueError, "init"),
    ],
)
def test_deep_mlp_rejects_bad_input(kwargs, error, argument):
    with raises_naming(error, argument):
        deep_mlp(**kwargs)


def _norms(activation, init="default"):
    torch.manual_seed(0)
    mlp = deep_mlp(10, 32, out_dim=4, activation=activation, init=init)
    x, y = torch.randn(64, 32), torch.randint(0, 4, (64,))
    return layer_gradient_norms(mlp, F.cross_entropy(mlp(x), y))


def test_layer_gradient_norms_match_autograd_and_show_vanishing():
    torch.manual_seed(0)
    mlp = deep_mlp(3, 6)
    loss = mlp(torch.randn(4, 6)).pow(2).mean()
    expected = [
        g.norm().item()
        for g in torch.autograd.grad(
            loss, [mlp[0].weight, mlp[2].weight, mlp[4].weight], retain_graph=True
        )
    ]
    assert layer_gradient_norms(mlp, loss) == pytest.approx(expected)
    sigmoid, relu_he = _norms("sigmoid"), _norms("relu", "kaiming")
    assert len(sigmoid) == 10
    assert sigmoid[0] / sigmoid[-1] < 1e-5  # vanishes through 9 sigmoids
    assert 0.05 < relu_he[0] / relu_he[-1] < 20  # He init keeps it


def test_layer_gradient_norms_clears_old_gradients():
    torch.manual_seed(0)
    mlp = deep_mlp(2, 4)
    x = torch.randn(3, 4)
    first = layer_gradient_norms(mlp, mlp(x).sum())
    assert layer_gradient_norms(mlp, mlp(x).sum()) == pytest.approx(first)


@pytest.mark.parametrize(
    ("model", "loss", "error", "argument"),
    [
        ("mlp", None, TypeError, "model"),
        (None, 1.0, TypeError, "loss"),
        (None, torch.ones(2, requires_grad=True).sum().detach(), ValueError, "loss"),
        (None, torch.ones(2, requires_grad=True) * 2, ValueError, "loss"),
    ],
)
def test_layer_gradient_norms_rejects_bad_input(model, loss, error, argument):
    mlp = deep_mlp(2, 4)
    model = mlp if model is None else model
    loss = mlp(torch.randn(2, 4)).sum() if loss is None else loss
    with raises_naming(error, argument):
        layer_gradient_norms(model, loss)


def test_layer_gradient_norms_needs_layers():
    weight = nn.Parameter(torch.ones(2))
    with raises_naming(ValueError, "model"):
        layer_gradient_norms(nn.ReLU(), (weight * 2).sum())


def test_input_gradient_norms_of_an_rnn_shrink_with_distance():
    torch.manual_seed(0)
    rnn = nn.RNN(4, 16, batch_first=True)
    x = torch.randn(8, 30, 4)
    norms = input_gradient_norms(rnn, x)
    assert norms.shape == (30,) and not norms.requires_grad
    assert norms[0] < 1e-3 * norms[-1]
    # entry t equals the gradient of sum(out[:, -1]) w.r.t. x[:, t], averaged over the batch
    x_grad = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(rnn(x_grad)[0][:, -1].sum(), x_grad)
    assert torch.allclose(norms, grad.double().norm(dim=2).mean(0))


def test_input_gradient_norms_do_not_underflow_to_zero():
    """Entries of 1e-30 square to 1e-60, below float32's range: the norm is taken in float64."""
    x = torch.full((2, 3, 4), 1.0)

    class Tiny(nn.Module):
        def forward(self, inputs):
            return inputs * 1e-30

    norms = input_gradient_norms(Tiny(), x)
    assert norms.dtype == torch.float64
    assert norms[-1].item() == pytest.approx(2e-30)  # ||(1e-30, 1e-30, 1e-30, 1e-30)||
    assert torch.all(norms[:-1] == 0)


@pytest.mark.parametrize(
    ("model", "inputs", "error", "argument"),
    [
        ("rnn", torch.zeros(2, 3, 4), TypeError, "model"),
        (nn.GRU(4, 5, batch_first=True), torch.zeros(2, 4), ValueError, "inputs"),
        (
            nn.GRU(4, 5, batch_first=True),
            torch.zeros(2, 3, 4, dtype=torch.long),
            TypeError,
            "inputs",
        ),
        (nn.Linear(4, 5), torch.zeros(2, 3, 4), None, None),
        (nn.Flatten(), torch.zeros(2, 3, 4), ValueError, "model"),
    ],
)
def test_input_gradient_norms_rejects_bad_input(model, inputs, error, argument):
    if error is None:  # a per-position Linear is fine: only the last step matters
        assert input_gradient_norms(model, inputs)[:-1].abs().sum() == 0
        return
    with raises_naming(error, argument):
        input_gradient_norms(model, inputs)


def test_set_update_gate_bias_opens_the_memory_path():
    torch.manual_seed(0)
    gru = nn.GRU(4, 8, num_layers=2, batch_first=True)
    assert set_update_gate_bias(gru, 3.0) is gru
    assert torch.all(gru.bias_ih_l1[8:16] == 3.0) and torch.all(gru.bias_hh_l1[8:16] == 0.0)
    x = torch.randn(4, 40, 4)
    torch.manual_seed(0)
    plain = nn.GRU(4, 8, num_layers=2, batch_first=True)
    assert input_gradient_norms(gru, x)[0] > 1e3 * input_gradient_norms(plain, x)[0]


@pytest.mark.parametrize(
    ("gru", "value", "error", "argument"),
    [
        (nn.LSTM(2, 3), 1.0, TypeError, "gru"),
        (nn.GRU(2, 3), "1", TypeError, "value"),
        (nn.GRU(2, 3), 50.0, ValueError, "value"),
        (nn.GRU(2, 3, bias=False), 1.0, ValueError, "gru"),
    ],
)
def test_set_update_gate_bias_rejects_bad_input(gru, value, error, argument):
    with raises_naming(error, argument):
        set_update_gate_bias(gru, value)


def test_first_token_task():
    tokens, labels = first_token_task(50, 7, num_classes=3, vocab_size=6, seed=0)
    assert tokens.shape == (50, 7) and labels.shape == (50,)
    assert torch.equal(tokens[:, 0], labels + 1)
    assert int(tokens[:, 1:].min()) >= 4 and int(tokens[:, 1:].max()) <= 5
    assert set(labels.tolist()) == {0, 1, 2}
    again = first_token_task(50, 7, num_classes=3, vocab_size=6, seed=0)
    assert torch.equal(tokens, again[0]) and torch.equal(labels, again[1])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"n": 0}, "n"), ({"length": 0}, "length"), ({"num_classes": 1}, "num_classes"),
     ({"vocab_size": 5}, "vocab_size"), ({"seed": -1}, "seed")],
)  # fmt: skip
def test_first_token_task_rejects_bad_input(kwargs, argument):
    with raises_naming(ValueError, argument):
        first_token_task(**({"n": 4, "length": 3, "num_classes": 4, "vocab_size": 8} | kwargs))

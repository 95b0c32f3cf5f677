"""mmlib.training.optim: the written-out optimizers against torch.optim, bit for bit."""

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from mmlib.training.optim import SGD, AdamW, default_optimizer
from tests.bad_input import raises_naming


def _fit(make_optimizer, steps: int = 40, schedule: bool = True) -> list[torch.Tensor]:
    """Train a small MLP with ``make_optimizer(params)``; return its final weights."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
    optimizer = make_optimizer(model.parameters())
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    data = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(16, 8, generator=data), torch.randint(0, 4, (16,), generator=data)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if schedule:
            cosine.step()
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("fused", [False, True])
def test_adamw_matches_torch_bit_for_bit(fused):
    ours = _fit(lambda p: AdamW(p, lr=1e-2, weight_decay=0.1, fused=fused))
    theirs = _fit(
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1, foreach=False, fused=fused)
    )
    assert _same(ours, theirs)


def test_adamw_loop_and_fused_kernel_agree_up_to_rounding():
    loop = _fit(lambda p: AdamW(p, lr=1e-2, weight_decay=0.1))
    fused = _fit(lambda p: AdamW(p, lr=1e-2, weight_decay=0.1, fused=True))
    for a, b in zip(loop, fused, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01)])
def test_sgd_matches_torch_bit_for_bit(momentum, weight_decay):
    def ours(p):
        return SGD(p, lr=0.1, momentum=momentum, weight_decay=weight_decay)

    def theirs(p):
        return torch.optim.SGD(p, lr=0.1, momentum=momentum, weight_decay=weight_decay)

    assert _same(_fit(ours), _fit(theirs))


def test_sgd_is_the_article_update():
    """One plain step is w - lr * dE/dw, exactly."""
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    (w**2).sum().backward()
    SGD([w], lr=0.25).step()
    assert torch.equal(w.detach(), torch.tensor([1.0, -2.0]) - 0.25 * torch.tensor([2.0, -4.0]))


def test_optimizers_do_not_import_the_compiler():
    """The reason the module exists: torch.optim's optimizers import torch._dynamo when they are
    built and stepped. (``state_dict`` and ``load_state_dict`` are torch's own and still do.)"""
    code = (
        "import sys, torch\n"
        "from mmlib.training.optim import SGD, AdamW\n"
        "m = torch.nn.Linear(3, 2)\n"
        "for opt in (AdamW(m.parameters(), fused=True), AdamW(m.parameters()),"
        " SGD(m.parameters(), lr=0.1, momentum=0.9)):\n"
        "    s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3)\n"
        "    m(torch.randn(4, 3)).sum().backward(); opt.step(); s.step(); opt.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    twin = nn.Linear(4, 2)
    twin.load_state_dict(model.state_dict())
    first, second = AdamW(model.parameters(), lr=0.1), AdamW(twin.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    model(x).pow(2).sum().backward()
    first.step()
    twin.load_state_dict(model.state_dict())
    second.load_state_dict(copy.deepcopy(first.state_dict()))  # torch shares the tensors
    for net, opt in ((model, first), (twin, second)):
        opt.zero_grad()
        net(x).pow(2).sum().backward()
        opt.step()
    assert torch.equal(model.weight, twin.weight)


def test_zero_grad_and_parameter_groups():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3))
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    (a.sum() + b.sum()).backward()
    opt.zero_grad(set_to_none=False)
    assert torch.equal(a.grad, torch.zeros(2))
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.step()  # no gradients: nothing moves
    assert torch.equal(a.detach(), torch.ones(2))


@pytest.mark.parametrize(
    "make, error, name",
    [
        (lambda p: AdamW(p, lr=-1.0), ValueError, "lr"),
        (lambda p: AdamW(p, lr="fast"), TypeError, "lr"),
        (lambda p: AdamW(p, betas=(0.9, 1.0)), ValueError, "betas"),
        (lambda p: AdamW(p, betas=0.9), TypeError, "betas"),
        (lambda p: AdamW(p, betas=("a", 0.9)), TypeError, "betas"),
        (lambda p: AdamW(p, eps=-1e-8), ValueError, "eps"),
        (lambda p: AdamW(p, weight_decay=-0.1), ValueError, "weight_decay"),
        (lambda p: AdamW(p, fused="yes"), TypeError, "fused"),
        (lambda p: SGD(p, lr=-0.1), ValueError, "lr"),
        (lambda p: SGD(p, lr=0.1, momentum=1.5), ValueError, "momentum"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
        (lambda p: SGD([torch.ones(2, dtype=torch.long)], lr=0.1), TypeError, "params"),
        (lambda p: SGD([{"params": list(p)}, {"params": list(p)}], lr=0.1), ValueError, "params"),
    ],
)
def test_bad_arguments_are_named(make, error, name):
    params = list(nn.Linear(2, 2).parameters())
    with raises_naming(error, name):
        make(params)


# ------------------------------------------------------------------------- default_optimizer
def make_model(dropout=0.1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))


def make_data():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(96, 6, generator=gen)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def test_default_optimizer_is_fused_adamw_and_matches_the_plain_one():
    torch.manual_seed(0)
    model = make_model(dropout=0.0)
    twin, start = copy.deepcopy(model), copy.deepcopy(model)
    fused = default_optimizer(model, lr=0.05, weight_decay=0.1)
    plain = torch.optim.AdamW(twin.parameters(), lr=0.05, weight_decay=0.1, foreach=False)
    assert isinstance(fused, AdamW) and fused.defaults["fused"] is True
    assert plain.defaults["fused"] is not True
    x, y = make_data()
    for net, opt in ((model, fused), (twin, plain)):
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for a, b, a0 in zip(model.parameters(), twin.parameters(), start.parameters(), strict=True):
        assert not torch.allclose(a, a0)  # five steps moved every tensor
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_default_optimizer_falls_back_to_plain_adamw_off_cpu_and_cuda():
    model = make_model().to("meta")
    assert default_optimizer(model).defaults["fused"] is False


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"model": "a model"}, TypeError, "model"),
        ({"model": torch.nn.ReLU()}, ValueError, "model"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": "fast"}, TypeError, "lr"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ],
)
def test_default_optimizer_rejects_bad_input(kwargs, error, name):
    kwargs = {"model": make_model(), **kwargs}
    with raises_naming(error, name):
        default_optimizer(**kwargs)

"""The training loop: it learns, repeats bit for bit, records history, and rejects bad input."""

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import mmlib.training.loop
from mmlib import get_device
from mmlib.training.batches import TensorBatches
from mmlib.training.loop import train
from tests.bad_input import raises_naming

N, D = 96, 6  # rows and features: small, so every test runs in well under a second


def make_data():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N, D, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long()  # a linearly separable two-class problem
    return x, y


def make_model(seed=0, dropout=0.1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))


def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def accuracy_of(x, y):
    def eval_fn(model):
        return {"acc": (model(x).argmax(1) == y).float().mean().item()}

    return eval_fn


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


def run(steps=30, seed=0, model_seed=0, **kwargs):
    x, y = make_data()
    model = make_model(model_seed)
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("progress", False)
    history = train(
        model, loss_fn, TensorBatches(x, y, batch_size=16), steps=steps, seed=seed, **kwargs
    )
    return model, history


# ------------------------------------------------------------------------- learning
def test_learns_and_records_history():
    x, y = make_data()
    model, history = run(steps=60, lr=1e-2, eval_fn=accuracy_of(x, y), eval_every=20)
    assert len(history.loss) == len(history.lr) == len(history.logs) == 60
    assert history.steps == [20, 40, 60]
    assert history.final("acc") >= 0.9
    assert history.metrics[-1]["acc"] == history.final("acc")
    assert sum(history.loss[-10:]) / 10 < 0.5 * sum(history.loss[:10]) / 10
    assert history.seconds > 0
    assert model.training  # back in train mode after the final evaluation
    assert repr(history) == f"History(steps=60, final loss={history.loss[-1]:.4g}, evaluations=3)"


def test_cosine_schedule_and_constant_rate():
    _, history = run(steps=10, lr=0.1)
    expected = [0.05 * (1 + math.cos(math.pi * i / 10)) for i in range(10)]
    assert history.lr == pytest.approx(expected)
    _, constant = run(steps=10, lr=0.1, scheduler=None)
    assert constant.lr == [0.1] * 10


def test_same_seed_gives_bit_identical_weights_and_other_seeds_differ():
    first, h1 = run(seed=3)
    second, h2 = run(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(weights(first), weights(second), strict=True))
    assert h1.loss == h2.loss
    other, _ = run(seed=4)  # only dropout draws from the seed here
    assert not all(torch.equal(a, b) for a, b in zip(weights(first), weights(other), strict=True))


def test_evaluation_runs_in_eval_mode_without_grad_and_does_not_disturb_training():
    seen = []

    def eval_fn(model):
        seen.append((model.training, torch.is_grad_enabled()))
        torch.rand(3)  # draws from the RNG, which must not change training
        return {"one": torch.tensor(1.0)}

    plain, _ = run(steps=12)
    evaluated, history = run(steps=12, eval_fn=eval_fn, eval_every=5)
    assert seen == [(False, False)] * 3
    assert history.steps == [5, 10, 12]
    assert history.metrics == [{"one": 1.0}] * 3
    assert all(torch.equal(a, b) for a, b in zip(weights(plain), weights(evaluated), strict=True))


def test_eval_fn_without_eval_every_runs_once_at_the_end():
    _, history = run(steps=7, eval_fn=lambda m: {"n": 7})
    assert history.steps == [7] and history.metrics == [{"n": 7.0}]


def test_epochs_and_batch_kinds():
    x, y = make_data()
    model = make_model()
    history = train(
        model, loss_fn, TensorBatches(x, y, batch_size=32), epochs=3, device="cpu", progress=False
    )
    assert len(history.loss) == 3 * 3
    loader = DataLoader(TensorDataset(x, y), batch_size=40, shuffle=True)
    assert len(train(model, loss_fn, loader, epochs=2, device="cpu", progress=False).loss) == 6
    dicts = [{"x": x[:50], "y": y[:50]}, {"x": x[50:], "y": y[50:]}]  # cycled as needed

    def dict_loss(model, batch):
        return F.cross_entropy(model(batch["x"]), batch["y"])

    assert len(train(model, dict_loss, dicts, steps=5, device="cpu", progress=False).loss) == 5
    stream = DataLoader(Rows(x, y), batch_size=48)  # no len(): epochs work without a schedule
    history = train(model, loss_fn, stream, epochs=2, scheduler=None, device="cpu", progress=False)
    assert len(history.loss) == 2 * (N // 48)


class Rows(IterableDataset):
    """A stream of ``(x, y)`` rows, whose DataLoader has no length."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return zip(self.x, self.y, strict=True)


def test_default_device_and_logged_values():
    x, y = make_data()
    model = make_model()

    def logged(model, batch):
        logits = model(batch[0])
        acc = (logits.argmax(1) == batch[1]).float().mean()
        return F.cross_entropy(logits, batch[1]), {"acc": acc, "const": 2}

    history = train(model, logged, TensorBatches(x, y, batch_size=32), steps=4, progress=False)
    assert next(model.parameters()).device.type == get_device().type
    assert [log["const"] for log in history.logs] == [2.0] * 4
    assert history.final("acc") == history.logs[-1]["acc"]
    assert history.final("loss") == history.loss[-1]
    assert history.names() == ["loss", "acc", "const"]


def test_grad_clip_bounds_the_update_and_own_optimizer_is_used():
    x, y = make_data()
    model = make_model(dropout=0.0)
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    history = train(
        model,
        loss_fn,
        [(x, y)],
        steps=1,
        optimizer=sgd,
        grad_clip=1e-3,
        scheduler=None,
        device="cpu",
        progress=False,
    )
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert history.lr == [1.0]  # the optimizer's own rate, not train's lr
    assert 0 < (after - before).norm() <= 1e-3 + 1e-7
    unclipped = make_model(dropout=0.0)
    sgd = torch.optim.SGD(unclipped.parameters(), lr=1.0)
    train(
        unclipped,
        loss_fn,
        [(x, y)],
        steps=1,
        optimizer=sgd,
        scheduler=None,
        device="cpu",
        progress=False,
    )
    moved = torch.cat([p.detach().flatten() for p in unclipped.parameters()]) - before
    assert moved.norm() > 1e-2  # so the bound above is the clip's doing


def test_nan_loss_names_the_step():
    calls = []

    def exploding(model, batch):
        calls.append(1)
        loss = loss_fn(model, batch)
        return loss * float("nan") if len(calls) == 3 else loss

    x, y = make_data()
    with raises_naming(ValueError, "loss") as info:
        train(make_model(), exploding, [(x, y)], steps=5, device="cpu", progress=False)
    assert "got nan at step 3" in str(info.value)  # the message names the step


def test_progress_bar_follows_progress_and_tqdm_disable(monkeypatch, capsys):
    # tqdm reads TQDM_DISABLE once, at import, into its default for disable=... (make exports
    # TQDM_DISABLE=1), so start from a bar that is on by default; train() reads the variable
    # itself on every call.
    real_tqdm = mmlib.training.loop.tqdm
    monkeypatch.setattr(mmlib.training.loop, "tqdm", functools.partial(real_tqdm, disable=False))
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    run(steps=2, progress=True, desc="my-run")
    assert "my-run" in capsys.readouterr().err
    run(steps=2, progress=False, desc="my-run")
    assert "my-run" not in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "0")
    run(steps=2, progress=True, desc="my-run")
    assert "my-run" in capsys.readouterr().err
    # With TQDM_DISABLE set, progress=True shows no bar.
    monkeypatch.setenv("TQDM_DISABLE", "1")
    run(steps=2, progress=True, desc="my-run")
    assert "my-run" not in capsys.readouterr().err


def test_notebook_bar_is_a_widget_that_tqdm_disable_turns_off(monkeypatch):
    # In JupyterLab tqdm.auto is tqdm.notebook, whose bar is an ipywidgets display. It ignores
    # TQDM_DISABLE (it passes disable=False itself), so validation (make test) relies on train().
    import tqdm.auto
    import tqdm.notebook

    assert (
        mmlib.training.loop.tqdm is tqdm.auto.tqdm
    )  # ipywidgets is installed: no "IProgress" warning
    shown = []
    monkeypatch.setattr(tqdm.notebook, "display", lambda *args, **kwargs: shown.append(args))
    monkeypatch.setattr(mmlib.training.loop, "tqdm", tqdm.notebook.tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    run(steps=2, progress=True)
    assert shown == []
    monkeypatch.delenv("TQDM_DISABLE")
    run(steps=2, progress=True)
    assert len(shown) == 1  # the widget, updated in place


# ------------------------------------------------------------------------- bad input
class NoLength:
    """Iterable again and again, without len(); yields ``items`` each time."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


@pytest.mark.parametrize(
    "change, error, name",
    [
        ({"model": "net"}, TypeError, "model"),
        ({"loss_fn": 3}, TypeError, "loss_fn"),
        ({"batches": iter([1])}, TypeError, "batches"),
        ({"batches": torch.zeros(3)}, TypeError, "batches"),
        ({"batches": 5}, TypeError, "batches"),
        ({"batches": []}, ValueError, "batches"),
        ({"batches": NoLength([])}, ValueError, "batches"),
        ({"steps": None}, ValueError, "steps"),
        ({"epochs": 2}, ValueError, "epochs"),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": 2.0}, TypeError, "steps"),
        ({"steps": True}, TypeError, "steps"),
        ({"steps": None, "epochs": -1}, ValueError, "epochs"),
        ({"steps": None, "epochs": 1, "batches": NoLength([1])}, ValueError, "batches"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay"),
        ({"grad_clip": -1.0}, ValueError, "grad_clip"),
        ({"optimizer": "adam"}, TypeError, "optimizer"),
        ({"scheduler": "linear"}, ValueError, "scheduler"),
        ({"eval_fn": 1}, TypeError, "eval_fn"),
        ({"eval_every": 5}, ValueError, "eval_every"),
        ({"eval_every": 0, "eval_fn": dict}, ValueError, "eval_every"),
        ({"progress": 1}, TypeError, "progress"),
        ({"desc": 3}, TypeError, "desc"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"device": 0}, TypeError, "device"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"ddp": "yes"}, TypeError, "ddp"),
    ],
)
def test_bad_arguments_are_rejected(change, error, name):
    x, y = make_data()
    args = {"model": make_model(), "loss_fn": loss_fn, "batches": [(x, y)], "steps": 2}
    args.update(change)
    options = {"device": "cpu", "progress": False}
    options.update({k: v for k, v in args.items() if k not in ("model", "loss_fn", "batches")})
    with raises_naming(error, name):
        train(args["model"], args["loss_fn"], args["batches"], **options)


def test_optimizer_of_another_model_is_rejected():
    x, y = make_data()
    foreign = torch.optim.SGD(make_model().parameters(), lr=0.1)
    with raises_naming(ValueError, "optimizer"):
        train(make_model(), loss_fn, [(x, y)], steps=1, optimizer=foreign, device="cpu")


@pytest.mark.parametrize(
    "returned, error, name",
    [
        (lambda loss: 1.0, TypeError, "loss_fn"),
        (lambda loss: loss.expand(2), TypeError, "loss_fn"),
        (lambda loss: loss.long(), TypeError, "loss_fn"),
        (lambda loss: loss.detach(), ValueError, "loss_fn"),
        (lambda loss: (loss, [1.0]), TypeError, "loss_fn's logs at step 1"),
        (lambda loss: (loss, {"a": "x"}), TypeError, "loss_fn's logs at step 1"),
        (lambda loss: (loss, {1: 1.0}), TypeError, "loss_fn's logs at step 1"),
        (lambda loss: (loss, {"a": True}), TypeError, "loss_fn's logs at step 1"),
    ],
)
def test_bad_loss_fn_results_are_rejected(returned, error, name):
    x, y = make_data()
    with raises_naming(error, name):
        train(
            make_model(),
            lambda m, b: returned(loss_fn(m, b)),
            [(x, y)],
            steps=2,
            device="cpu",
            progress=False,
        )


@pytest.mark.parametrize("result", [None, {"acc": "high"}, {"acc": torch.ones(2)}])
def test_bad_eval_fn_results_are_rejected(result):
    x, y = make_data()
    with raises_naming(TypeError, "eval_fn's result"):
        train(
            make_model(),
            loss_fn,
            [(x, y)],
            steps=1,
            eval_fn=lambda m: result,
            device="cpu",
            progress=False,
        )


def test_a_config_object_gives_the_same_run_as_keywords():
    from mmlib.training.config import TrainConfig

    x, y = make_data()
    config = TrainConfig(steps=5, lr=1e-2, device="cpu", progress=False)
    a, b = make_model(), make_model()
    first = train(a, loss_fn, TensorBatches(x, y, batch_size=16), config)
    second = train(
        b,
        loss_fn,
        TensorBatches(x, y, batch_size=16),
        steps=5,
        lr=1e-2,
        device="cpu",
        progress=False,
    )
    assert first.loss == second.loss
    # keywords next to a config change it
    third = train(make_model(), loss_fn, TensorBatches(x, y, batch_size=16), config, steps=2)
    assert len(third.loss) == 2


def test_run_hooks_see_each_finished_run(monkeypatch):
    from mmlib.training import loop

    seen = []
    monkeypatch.setattr(loop, "RUN_HOOKS", [seen.append])
    x, y = make_data()
    history = train(
        make_model(),
        loss_fn,
        [(x[:8], y[:8]), (x[8:20], y[8:20])],
        steps=3,
        device="cpu",
        progress=False,
        desc="hooked",
    )
    (run,) = seen
    assert run.history is history and run.config.desc == "hooked" and run.world_size == 1
    assert history.samples == 8 + 12 + 8
    assert torch.equal(run.first_batch[0], x[:8])

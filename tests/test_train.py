"""The training loop: it learns, repeats bit for bit, records history, and rejects bad input."""

import copy
import functools
import math
from collections import namedtuple

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import mmlib.training.loop
from mmlib import get_device
from mmlib.training.batches import TensorBatches, shard_batch, to_device
from mmlib.training.history import History
from mmlib.training.loop import train
from mmlib.training.optim import AdamW, default_optimizer

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
    with pytest.raises(ValueError, match="loss must be finite, got nan at step 3"):
        train(make_model(), exploding, [(x, y)], steps=5, device="cpu", progress=False)


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
    "change, error, match",
    [
        ({"model": "net"}, TypeError, "model must be a torch.nn.Module"),
        ({"loss_fn": 3}, TypeError, "loss_fn must be callable"),
        ({"batches": iter([1])}, TypeError, "batches must be a re-iterable"),
        ({"batches": torch.zeros(3)}, TypeError, "batches must be a re-iterable"),
        ({"batches": 5}, TypeError, "batches must be a re-iterable"),
        ({"batches": []}, ValueError, "batches must hold at least one batch"),
        ({"batches": NoLength([])}, ValueError, "batches must yield at least one batch"),
        ({"steps": None}, ValueError, "steps or epochs must be given"),
        ({"epochs": 2}, ValueError, "steps or epochs must be given, exactly one"),
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"steps": 2.0}, TypeError, "steps must be an int"),
        ({"steps": True}, TypeError, "steps must be an int"),
        ({"steps": None, "epochs": -1}, ValueError, "epochs must be >= 1"),
        ({"steps": None, "epochs": 1, "batches": NoLength([1])}, ValueError, "len()"),
        ({"lr": 0.0}, ValueError, "lr must be a positive finite number"),
        ({"lr": float("nan")}, ValueError, "lr must be a positive finite number"),
        ({"lr": "0.1"}, TypeError, "lr must be a number"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay must be in"),
        ({"grad_clip": -1.0}, ValueError, "grad_clip must be a positive finite number"),
        ({"optimizer": "adam"}, TypeError, "optimizer must be a torch.optim.Optimizer"),
        ({"scheduler": "linear"}, ValueError, "scheduler must be 'cosine' or None"),
        ({"eval_fn": 1}, TypeError, "eval_fn must be callable"),
        ({"eval_every": 5}, ValueError, "eval_every needs an eval_fn"),
        ({"eval_every": 0, "eval_fn": dict}, ValueError, "eval_every must be >= 1"),
        ({"progress": 1}, TypeError, "progress must be a bool"),
        ({"desc": 3}, TypeError, "desc must be a str"),
        ({"device": "tpu"}, ValueError, "device must be 'cuda', 'mps', 'cpu' or a torch.device"),
        ({"device": 0}, TypeError, "device must be a torch.device"),
        ({"seed": -1}, ValueError, "seed must be in"),
        ({"seed": "0"}, TypeError, "seed must be an int"),
        ({"ddp": "yes"}, TypeError, "ddp must be True, False or None"),
    ],
)
def test_bad_arguments_are_rejected(change, error, match):
    x, y = make_data()
    args = {"model": make_model(), "loss_fn": loss_fn, "batches": [(x, y)], "steps": 2}
    args.update(change)
    options = {"device": "cpu", "progress": False}
    options.update({k: v for k, v in args.items() if k not in ("model", "loss_fn", "batches")})
    with pytest.raises(error, match=match.replace("(", r"\(").replace(")", r"\)")):
        train(args["model"], args["loss_fn"], args["batches"], **options)


def test_optimizer_of_another_model_is_rejected():
    x, y = make_data()
    foreign = torch.optim.SGD(make_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizer must hold the model's parameters"):
        train(make_model(), loss_fn, [(x, y)], steps=1, optimizer=foreign, device="cpu")


@pytest.mark.parametrize(
    "returned, error, match",
    [
        (lambda loss: 1.0, TypeError, "loss_fn must return a scalar float tensor"),
        (lambda loss: loss.expand(2), TypeError, "loss_fn must return a scalar float tensor"),
        (lambda loss: loss.long(), TypeError, "loss_fn must return a scalar float tensor"),
        (lambda loss: loss.detach(), ValueError, "loss_fn must return a loss that depends"),
        (lambda loss: (loss, [1.0]), TypeError, "loss_fn's logs at step 1 must be a dict"),
        (lambda loss: (loss, {"a": "x"}), TypeError, "loss_fn's logs at step 1 must be a dict"),
        (lambda loss: (loss, {1: 1.0}), TypeError, "loss_fn's logs at step 1 must be a dict"),
        (lambda loss: (loss, {"a": True}), TypeError, "loss_fn's logs at step 1 must be a dict"),
    ],
)
def test_bad_loss_fn_results_are_rejected(returned, error, match):
    x, y = make_data()
    with pytest.raises(error, match=match):
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
    with pytest.raises(TypeError, match="eval_fn's result must be a dict of str to float"):
        train(
            make_model(),
            loss_fn,
            [(x, y)],
            steps=1,
            eval_fn=lambda m: result,
            device="cpu",
            progress=False,
        )


# ------------------------------------------------------------------------- helpers
def test_to_device_keeps_the_structure():
    Pair = namedtuple("Pair", "image text")
    batch = {"pair": Pair(torch.ones(2), "a caption"), "ids": [torch.zeros(3, dtype=torch.long)]}
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved["pair"], Pair) and moved["pair"].text == "a caption"
    assert torch.equal(moved["pair"].image, torch.ones(2))
    assert isinstance(moved["ids"], list) and moved["ids"][0].dtype == torch.long
    assert to_device((torch.ones(1), 3), "cpu")[1] == 3
    with pytest.raises(TypeError, match="device must be a torch.device"):
        to_device(torch.ones(1), 0)


def test_tensor_batches_cover_every_row_and_repeat_by_epoch():
    x = torch.arange(10)
    batches = TensorBatches(x, x * 2, batch_size=4, seed=5)
    assert len(batches) == 3
    epoch0 = list(batches)
    assert [len(b[0]) for b in epoch0] == [4, 4, 2]
    assert sorted(torch.cat([b[0] for b in epoch0]).tolist()) == list(range(10))
    assert all(torch.equal(a * 2, b) for a, b in epoch0)  # rows stay paired
    epoch1 = torch.cat([b[0] for b in batches])
    assert not torch.equal(torch.cat([b[0] for b in epoch0]), epoch1)
    batches.set_epoch(0)
    assert torch.equal(torch.cat([b[0] for b in batches]), torch.cat([b[0] for b in epoch0]))
    again = TensorBatches(x, x * 2, batch_size=4, seed=5)
    assert torch.equal(torch.cat([b[0] for b in again]), torch.cat([b[0] for b in epoch0]))


def test_tensor_batches_in_order_and_drop_last():
    x = torch.arange(10)
    ordered = list(TensorBatches(x, batch_size=4, shuffle=False))
    assert isinstance(ordered[0], torch.Tensor)  # one tensor in, tensors out
    assert [b.tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = TensorBatches(x, batch_size=4, shuffle=False, drop_last=True)
    assert len(dropped) == 2 and [len(b) for b in dropped] == [4, 4]
    assert len(TensorBatches(x, batch_size=5)) == 2


@pytest.mark.parametrize(
    "tensors, options, error, match",
    [
        ((), {}, ValueError, "tensors must hold at least one tensor"),
        (([1, 2],), {}, TypeError, r"tensors\[0\] must be a torch.Tensor"),
        ((torch.tensor(1.0),), {}, ValueError, r"tensors\[0\] must have a batch dimension"),
        ((torch.zeros(0, 2),), {}, ValueError, r"tensors\[0\] must not be empty"),
        ((torch.zeros(4), torch.zeros(5)), {}, ValueError, "batch sizes must match"),
        ((torch.zeros(4),), {"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ((torch.zeros(4),), {"shuffle": 1}, TypeError, "shuffle must be a bool"),
        ((torch.zeros(4),), {"drop_last": None}, TypeError, "drop_last must be a bool"),
        ((torch.zeros(4),), {"seed": -2}, ValueError, "seed must be >= 0"),
        ((torch.zeros(4),), {"batch_size": 5, "drop_last": True}, ValueError, "batch_size must"),
    ],
)
def test_tensor_batches_reject_bad_input(tensors, options, error, match):
    options = {"batch_size": 2, **options}
    with pytest.raises(error, match=match):
        TensorBatches(*tensors, **options)


def test_shard_batch_slices_every_tensor():
    x = torch.arange(8)
    batch = {"x": x, "pair": (x * 10, "text")}
    second = shard_batch(batch, rank=1, world_size=2)
    assert second["x"].tolist() == [4, 5, 6, 7] and second["pair"][0].tolist() == [40, 50, 60, 70]
    assert second["pair"][1] == "text"
    with pytest.raises(ValueError, match="divisible by world_size=3"):
        shard_batch(batch, rank=0, world_size=3)
    with pytest.raises(ValueError, match="rank must be < world_size=2"):
        shard_batch(batch, rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        shard_batch(batch, rank=0, world_size=0)
    with pytest.raises(TypeError, match="rank must be an int"):
        shard_batch(batch, rank="0", world_size=2)


def test_history_final_and_plot():
    history = History(
        loss=[1.0, 0.5, 0.25],
        lr=[0.1] * 3,
        logs=[{}] * 3,
        steps=[2, 3],
        metrics=[{"acc": 0.5}, {"acc": 0.75, "recall": 0.5}],
    )
    assert history.final("acc") == 0.75 and history.final("recall") == 0.5
    with pytest.raises(ValueError, match="name must be one of"):
        history.final("bleu")
    fig, ax = plt.subplots()
    assert history.plot(ax) is ax
    assert [line.get_label() for line in ax.get_legend().get_lines()] == [
        "train loss",
        "acc",
        "recall",
    ]
    assert list(ax.get_lines()[0].get_ydata()) == [1.0, 0.5, 0.25]
    plt.close(fig)
    fig = plt.figure()
    assert History(loss=[1.0]).plot().get_legend() is not None  # draws on the current axes
    plt.close(fig)
    with pytest.raises(ValueError, match="history must hold at least one step"):
        History().plot()
    assert repr(History()) == "History(steps=0, evaluations=0)"


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
            F.cross_entropy(net(x), y).backward()
            opt.step()
    for a, b, a0 in zip(model.parameters(), twin.parameters(), start.parameters(), strict=True):
        assert not torch.allclose(a, a0)  # five steps moved every tensor
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_default_optimizer_falls_back_to_plain_adamw_off_cpu_and_cuda():
    model = make_model().to("meta")
    assert default_optimizer(model).defaults["fused"] is False


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model": "a model"}, TypeError, "model must be a torch.nn.Module, got str 'a model'"),
        ({"model": torch.nn.ReLU()}, ValueError, "model must have parameters.*got a ReLU"),
        ({"lr": 0.0}, ValueError, "lr must be a positive finite number, got 0.0"),
        ({"lr": "fast"}, TypeError, "lr must be a number"),
        ({"weight_decay": -0.1}, ValueError, r"weight_decay must be in \[0.0, None\]"),
    ],
)
def test_default_optimizer_rejects_bad_input(kwargs, error, message):
    kwargs = {"model": make_model(), **kwargs}
    with pytest.raises(error, match=message):
        default_optimizer(**kwargs)


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

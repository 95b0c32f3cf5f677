"""The benchmark log of ``make bench`` (tools/train_log.py): a hook in train()'s RUN_HOOKS that
writes one JSON line per run once installed, nothing before, and the same results either way."""

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmlib.training.batches import TensorBatches, batch_size
from mmlib.training.loop import RUN_HOOKS, train
from tools import train_log

N, D, HIDDEN, CLASSES = 96, 6, 16, 2


def make_data():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N, D, generator=gen)
    return x, (x[:, 0] > 0).long()


def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def run(batch_size=16, **kwargs):
    """Train a small MLP with dropout (so the random stream matters); return model, history."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, HIDDEN), nn.ReLU(), nn.Dropout(0.2), nn.Linear(HIDDEN, 2))
    x, y = make_data()
    kwargs.setdefault("steps", 12)
    history = train(
        model,
        loss_fn,
        TensorBatches(x, y, batch_size=batch_size),
        device="cpu",
        progress=False,
        lr=1e-2,
        **kwargs,
    )
    return model, history


@pytest.fixture(autouse=True)
def no_hooks():
    """Each test starts and ends with no hook installed."""
    saved = list(RUN_HOOKS)
    RUN_HOOKS.clear()
    yield
    RUN_HOOKS[:] = saved


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_no_log_and_no_flop_count_when_not_installed(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the FLOP count ran although no log is installed")

    monkeypatch.setattr(train_log, "flops_per_step", must_not_run)
    run()
    assert list(tmp_path.iterdir()) == []


def test_one_line_per_run_with_counts(monkeypatch, tmp_path):
    log = tmp_path / "train.jsonl"
    train_log.install(log)
    train_log.install(log)  # installing twice keeps one hook
    assert len(RUN_HOOKS) == 1
    _, history = run(steps=12, desc="first")
    run(steps=10, batch_size=20, desc="second")  # 5 batches per epoch: 20, 20, 20, 20, 16
    first, second = read_log(log)
    assert first["desc"] == "first" and second["desc"] == "second"
    assert (first["steps"], first["samples"]) == (12, 12 * 16)
    assert (second["steps"], second["samples"]) == (10, 2 * N)
    assert first["seconds"] == history.seconds > 0
    assert first["device"] == "cpu" and first["world_size"] == 1
    assert first["threads"] == torch.get_num_threads()
    assert first["parameters"] == (D + 1) * HIDDEN + (HIDDEN + 1) * CLASSES
    # Matrix products only: forward 2*B*(D*H + H*C); backward the weight gradients of both
    # layers (same again) and the input gradient of the second (the input needs no gradient).
    b = 16
    forward = 2 * b * (D * HIDDEN + HIDDEN * CLASSES)
    assert first["flops_per_step"] == forward + forward + 2 * b * HIDDEN * CLASSES


def test_logging_changes_no_result(monkeypatch, tmp_path):
    plain, plain_history = run()
    after_plain = (torch.rand(3), np.random.rand(), random.random())
    train_log.install(tmp_path / "train.jsonl")
    logged, logged_history = run()
    after_logged = (torch.rand(3), np.random.rand(), random.random())
    assert logged_history.loss == plain_history.loss
    for a, b in zip(plain.parameters(), logged.parameters(), strict=True):
        assert torch.equal(a, b)
        assert a.grad is not None and torch.equal(a.grad, b.grad)
    assert torch.equal(after_plain[0], after_logged[0])
    assert after_plain[1:] == after_logged[1:]


def test_a_failing_count_is_recorded_not_raised(monkeypatch, tmp_path):
    log = tmp_path / "train.jsonl"
    train_log.install(log)

    def broken(*args, **kwargs):
        raise RuntimeError("cannot copy this model")

    monkeypatch.setattr(train_log, "flops_per_step", broken)
    _, history = run(steps=3)
    (record,) = read_log(log)
    assert len(history.loss) == 3
    assert record["flops_per_step"] is None
    assert record["flops_error"] == "RuntimeError: cannot copy this model"


@pytest.mark.parametrize(
    ("batch", "rows"),
    [
        (torch.zeros(5, 2), 5),
        ((torch.zeros(4, 3), torch.zeros(4)), 4),
        ({"text": "abc", "ids": torch.zeros(7, 2)}, 7),
        (torch.tensor(1.0), 1),
        (["no tensors"], 0),
    ],
)
def test_batch_size_is_the_first_tensors_first_dimension(batch, rows):
    assert batch_size(batch) == rows

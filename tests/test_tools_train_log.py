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
    monkeypatch.setattr(train_log, "CEILING_MIN_S", 0.0)  # the ceiling is measured too
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


def test_repeat_batch_repeats_every_tensor_along_the_batch():
    x, y = torch.arange(6.0).view(3, 2), torch.tensor([0, 1, 2])
    big = train_log.repeat_batch((x, [y, None], "text"), 2)
    assert torch.equal(big[0], torch.cat([x, x])) and torch.equal(big[1][0], torch.cat([y, y]))
    assert big[1][1] is None and big[2] == "text"


def test_only_long_runs_get_their_ceiling(monkeypatch, tmp_path):
    log = tmp_path / "train.jsonl"
    train_log.install(log)
    run(steps=3, desc="short")  # far under CEILING_MIN_S
    monkeypatch.setattr(train_log, "CEILING_MIN_S", 0.0)
    monkeypatch.setattr(train_log, "CEILING_SAMPLES", 70)
    run(steps=3, desc="long")
    monkeypatch.setattr(train_log, "CEILING_PASS_S", 0.0)  # the first batch is large enough
    run(steps=3, desc="slow")
    short, long, slow = read_log(log)
    assert "ceiling_flops_per_s" not in short
    assert long["ceiling_batch"] in (16, 32, 64)  # the best of 16 doubled within 70
    assert slow["ceiling_batch"] == 16  # one pass took CEILING_PASS_S: no larger batch tried
    assert long["ceiling_flops_per_s"] > 0
    assert all(line["hook_s"] > 0 for line in (short, long, slow))


def test_a_failing_ceiling_is_recorded_not_raised(monkeypatch, tmp_path):
    log = tmp_path / "train.jsonl"
    train_log.install(log)
    monkeypatch.setattr(train_log, "CEILING_MIN_S", 0.0)
    monkeypatch.setattr(train_log, "repeat_batch", lambda batch, factor: "not a batch")
    run(steps=3)
    (record,) = read_log(log)
    assert record["ceiling_error"].startswith("ValueError: too many values to unpack")
    assert "ceiling_flops_per_s" not in record and record["flops_per_step"] > 0


def test_the_ceiling_is_the_best_rate_over_doubling_batches(monkeypatch):
    captured = []
    RUN_HOOKS.append(captured.append)
    run(steps=2)  # first batch: 16 examples
    seconds_at = {16: 1.0, 32: 1.0, 64: 1.5, 128: 3.5}  # per pass; 64 has the best rate
    monkeypatch.setattr(train_log, "_counted", lambda run, model, batch: 100 * len(batch[0]))
    monkeypatch.setattr(train_log, "_seconds", lambda run, model, batch: seconds_at[len(batch[0])])
    monkeypatch.setattr(train_log, "CEILING_PASS_S", 3.0)  # 128 takes 3.5 s: stop there
    monkeypatch.setattr(train_log, "CEILING_SAMPLES", 10_000)
    assert train_log.ceiling(captured[0]) == {
        "ceiling_flops_per_s": 100 * 64 / 1.5,
        "ceiling_batch": 64,
    }
    monkeypatch.setattr(train_log, "CEILING_SAMPLES", 40)  # 64 would pass it: 16 and 32 only
    assert train_log.ceiling(captured[0])["ceiling_batch"] == 32

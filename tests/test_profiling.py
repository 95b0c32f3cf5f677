"""mmlib/training/profiling.py: the matrix-multiply throughput that `make bench` and chapter 7
measure, and one training step under the profiler."""

import itertools
import math
import os
from types import SimpleNamespace

import pytest
import torch

from mmlib.training import profiling as mmbench
from tests.bad_input import raises_naming


def test_matmul_flop_count_is_two_n_cubed():
    assert mmbench.matmul_flop_count(1) == 2
    assert mmbench.matmul_flop_count(1024) == 2 * 1024**3


def test_measure_matmul_flops_divides_the_count_by_the_fastest_product(monkeypatch):
    """With a clock that advances 1 s per reading, every product takes 1 s, so the result is
    exactly 2 n^3 FLOP/s; the warm-up product is not counted."""
    clock = itertools.count()
    monkeypatch.setattr(mmbench.time, "perf_counter", lambda: float(next(clock)))
    assert mmbench.measure_matmul_flops(size=8, repeats=3, device="cpu") == 2 * 8**3
    assert next(clock) == 1 + 2 * 3  # the warm-up reads the clock once, each timed product twice


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_measure_matmul_flops_is_a_positive_finite_rate(dtype):
    flops = mmbench.measure_matmul_flops(size=64, repeats=2, device="cpu", dtype=dtype)
    assert isinstance(flops, float) and math.isfinite(flops) and flops > 0


def test_measure_matmul_flops_leaves_the_global_rng_alone():
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    mmbench.measure_matmul_flops(size=16, repeats=1, device=torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"size": 0}, ValueError, "size"),
        ({"size": 2.5}, TypeError, "size"),
        ({"repeats": 0}, ValueError, "repeats"),
        ({"repeats": True}, TypeError, "repeats"),
        ({"dtype": torch.int64}, TypeError, "dtype"),
        ({"dtype": "float32"}, TypeError, "dtype"),
        ({"device": 0}, TypeError, "device"),
        ({"device": "abacus"}, ValueError, "device"),
    ],
)
def test_measure_matmul_flops_rejects_bad_arguments(kwargs, error, name):
    with raises_naming(error, name):
        mmbench.measure_matmul_flops(**({"size": 4, "repeats": 1, "device": "cpu"} | kwargs))


@pytest.mark.parametrize("size, error", [(0, ValueError), (3.0, TypeError), (None, TypeError)])
def test_matmul_flop_count_rejects_bad_sizes(size, error):
    with raises_naming(error, "size"):
        mmbench.matmul_flop_count(size)


def test_measure_matmul_flops_rejects_a_missing_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with raises_naming(ValueError, "cuda"):  # get_device names the missing kind
        mmbench.measure_matmul_flops(size=4, repeats=1, device="cuda")


def event(name, parent=None):
    return SimpleNamespace(name=name, cpu_parent=parent)


def test_phase_of_reads_the_enclosing_events():
    step = event("ProfilerStep")
    forward = event("forward", step)
    backward = event("autograd::engine::evaluate_function: AddmmBackward0", step)
    optimizer = event("Optimizer.step#AdamW.step", step)
    assert mmbench.phase_of(event("aten::mm", event("aten::linear", forward))) == "forward"
    assert mmbench.phase_of(event("aten::mm", event("AddmmBackward0", backward))) == "backward"
    assert mmbench.phase_of(event("aten::_foreach_mul_", optimizer)) == "optimizer"
    assert mmbench.phase_of(event("aten::index", step)) == "other"
    with raises_naming(TypeError, "event"):
        mmbench.phase_of("aten::mm")


def tiny_step():
    """One AdamW step of a small MLP, its forward pass labelled, plus noise on fd 2."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    optimizer = torch.optim.AdamW(model.parameters())
    x, y = torch.randn(64, 32), torch.randint(0, 2, (64,))

    def step():
        os.write(2, b"native noise\n")
        with torch.profiler.record_function("forward"):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def test_profile_step_splits_a_training_step_by_phase(capfd):
    step = tiny_step()
    step()  # warm-up
    capfd.readouterr()
    profile = mmbench.profile_step(step, device="cpu")
    assert "native noise" not in capfd.readouterr().err  # native stderr kept out of the output
    os.write(2, b"restored\n")
    assert "restored" in capfd.readouterr().err
    assert set(profile.phase_ms) == set(mmbench.PHASES)
    assert all(profile.phase_ms[p] > 0 for p in ("forward", "backward", "optimizer"))
    assert profile.total_ms == pytest.approx(sum(profile.op_ms.values()))
    assert profile.op_phase["aten::addmm"] == "forward"
    assert profile.num_events >= len(profile.op_ms) > 5
    top = profile.top_ops(3)
    assert len(top) == 3 and [ms for _, ms, _ in top] == sorted(profile.op_ms.values())[::-1][:3]
    assert all(phase in mmbench.PHASES for _, _, phase in top)
    with raises_naming(ValueError, "k"):
        profile.top_ops(0)


def test_profile_step_restores_stderr_when_the_step_fails(capfd):
    def failing():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        mmbench.profile_step(failing, device="cpu")
    os.write(2, b"still here\n")
    assert "still here" in capfd.readouterr().err


@pytest.mark.parametrize(
    "step, device, error, name",
    [
        ("train", "cpu", TypeError, "step"),
        (lambda: None, "abacus", ValueError, "device"),
        (lambda: None, 3, TypeError, "device"),
    ],
)
def test_profile_step_rejects_bad_arguments(step, device, error, name):
    with raises_naming(error, name):
        mmbench.profile_step(step, device=device)


def test_best_time_warms_up_then_keeps_the_fastest_call(monkeypatch):
    clock = iter([0.0, 10.0, 13.0, 20.0, 21.0, 30.0, 32.0])  # warm-up, then calls of 3, 1, 2 s
    monkeypatch.setattr(mmbench.time, "perf_counter", lambda: next(clock))
    calls = []
    assert mmbench.best_time(lambda: calls.append(1), repeats=3, device="cpu") == 1.0
    assert len(calls) == 4  # one untimed warm-up call, then three timed ones


def test_best_time_rejects_bad_arguments():
    with raises_naming(TypeError, "fn"):
        mmbench.best_time(3, device="cpu")
    with raises_naming(TypeError, "repeats"):
        mmbench.best_time(lambda: None, repeats=2.0, device="cpu")
    with raises_naming(TypeError, "device"):
        mmbench.best_time(lambda: None, device=1)
    with raises_naming(ValueError, "repeats"):
        mmbench.best_time(lambda: None, repeats=0, device="cpu")

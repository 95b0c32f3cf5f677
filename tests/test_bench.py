"""The fast pieces of `make bench` (tools/bench.py): parsing, the FLOP arithmetic, the table;
and mmlib/bench.py, the matrix-multiply throughput that `make bench` and chapter 7 measure.
Nothing here executes a notebook or runs the bench."""

import itertools
import json
import math
import os
from types import SimpleNamespace

import pytest
import torch

from mmlib import bench as mmbench
from tools import bench

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu vme
"""


def test_cpu_model_reads_the_model_name():
    assert bench.cpu_model(CPUINFO) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert bench.cpu_model("processor\t: 0\nModel\t\t: Raspberry Pi 4 Model B\n") == (
        "Raspberry Pi 4 Model B"
    )
    assert bench.cpu_model("processor\t: 0\n") == ""


def test_budget_of_reads_notebook_metadata(tmp_path):
    nb = tmp_path / "a.ipynb"
    nb.write_text(json.dumps({"metadata": {"mmbook": {"budget_s": 25}}, "cells": []}))
    assert bench.budget_of(nb) == 25.0
    nb.write_text(json.dumps({"metadata": {}, "cells": []}))
    assert bench.budget_of(nb) is None


def test_parse_peak_reads_the_last_printed_line():
    cell = {
        "outputs": [
            {"name": "stderr", "text": "a warning\n"},
            {"name": "stdout", "text": json.dumps({"rss": 3 * 2**20, "gpu": None}) + "\n"},
        ]
    }
    assert bench.parse_peak(cell) == {"peak_rss_mb": 3.0, "peak_gpu_mb": None}
    cell["outputs"][1]["text"] = json.dumps({"rss": 2**21, "gpu": 2**30})
    assert bench.parse_peak(cell) == {"peak_rss_mb": 2.0, "peak_gpu_mb": 1024.0}


def test_peak_cell_prints_parsable_json(capsys):
    exec(bench.PEAK_CELL, {})
    peak = bench.parse_peak({"outputs": [{"name": "stdout", "text": capsys.readouterr().out}]})
    assert peak["peak_rss_mb"] > 10  # this Python process holds more than 10 MB


def test_read_train_log_tags_each_run(tmp_path):
    log = tmp_path / "train.jsonl"
    assert bench.read_train_log(log, "chapters/x.ipynb") == []
    log.write_text('{"desc": "a", "steps": 2}\n\n{"desc": "b", "steps": 3}\n')
    runs = bench.read_train_log(log, "chapters/x.ipynb")
    assert [(r["notebook"], r["desc"], r["steps"]) for r in runs] == [
        ("chapters/x.ipynb", "a", 2),
        ("chapters/x.ipynb", "b", 3),
    ]


def run(desc, seconds, steps=10, samples=640, flops=1e9):
    return {"desc": desc, "seconds": seconds, "steps": steps, "samples": samples,
            "flops_per_step": flops}  # fmt: skip


def test_heaviest_runs_by_time_with_throughput_and_share_of_peak():
    runs = [run("short", 1.0), run("long", 4.0), run("none", 3.0, flops=None), run("mid", 2.0)]
    top = bench.heaviest_runs(runs, peak_flops=1e10)
    assert [r["desc"] for r in top] == ["long", "none", "mid"]
    assert top[0]["samples_per_s"] == pytest.approx(160.0)
    assert top[0]["flops_per_s"] == pytest.approx(2.5e9)  # 10 steps x 1 GFLOP in 4 s
    assert top[0]["peak_ratio"] == pytest.approx(0.25)
    assert top[1]["flops_per_s"] is None and top[1]["peak_ratio"] is None
    assert bench.heaviest_runs(runs, 1e10, top=1)[0]["desc"] == "long"


def test_targets_say_which_are_met():
    cpu = fake_report()["kernels"]["mmbook-cpu"]
    book, each, peak = bench.targets(cpu)
    assert book == ("whole book in 300 s or less", "16.5 s", True)
    assert each == (
        "each notebook in 60 s or less",
        "slowest chapters/b.ipynb: 12.5 s (1 failed)",
        False,  # a notebook that failed has not met its limit
    )
    assert peak[1] == "chapters/b.ipynb 'big': 2.5%" and peak[2] is False


@pytest.mark.parametrize(
    ("slowest_s", "ratio", "total_s", "met"),
    [
        (60.0, 0.30, 300.0, (True, True, True)),  # each limit holds at its edge
        (60.1, 0.29, 300.1, (False, False, False)),
    ],
)
def test_targets_edges(slowest_s, ratio, total_s, met):
    cpu = fake_report()["kernels"]["mmbook-cpu"]
    cpu["notebooks"] = [{"path": "chapters/a.ipynb", "budget_s": 90.0, "seconds": slowest_s}]
    cpu["total_s"] = total_s
    cpu["heaviest_training"][0]["peak_ratio"] = ratio
    assert tuple(ok for _, _, ok in bench.targets(cpu)) == met


def test_targets_without_training_runs():
    cpu = fake_report()["kernels"]["mmbook-cpu"]
    cpu["heaviest_training"] = []
    assert bench.targets(cpu)[-1][1:] == ("-", False)


def test_formatters():
    assert bench.gflops(2.5e9) == "2.5" and bench.gflops(1.234e11) == "123"
    assert bench.gflops(1.1406e12) == "1,141" and bench.gflops(999.4e9) == "999"
    assert bench.gflops(None) == "-"
    assert bench.percent(0.25) == "25%" and bench.percent(0.00028) == "0.028%"
    assert bench.seconds(3.14159) == "3.1" and bench.seconds(None) == "-"


def fake_report():
    """A small report shaped like the bench's: one notebook over budget, one failed."""
    cpu = {
        "device": "cpu",
        "notebooks": [
            {"path": "chapters/a.ipynb", "budget_s": 10.0, "seconds": 4.0, "peak_rss_mb": 500.0},
            {"path": "chapters/b.ipynb", "budget_s": 10.0, "seconds": 12.5, "peak_rss_mb": 900.0},
            {"path": "chapters/c.ipynb", "budget_s": 20.0, "error": "CellExecutionError: boom"},
        ],
        "total_s": 16.5,
        "matmul_peak": {"flops": 1e11, "size": 2048, "dtype": "float32"},
        "training_runs": [{"notebook": "chapters/b.ipynb", **run("big", 4.0)}],
        "nbval": {"seconds": 20.0, "returncode": 0, "total_s": 18.0},
    }
    cpu["heaviest_training"] = bench.heaviest_runs(cpu["training_runs"], 1e11)
    return {
        "schema": 1,
        "machine": {
            "date": "2026-01-02 03:04 UTC",
            "python": "3.11.7",
            "torch": "2.14.1",
            "platform": "Linux",
            "cpu": "Test CPU",
            "cores": 2,
            "torch_threads": 2,
            "gpu": None,
        },  # fmt: skip
        "complete": False,
        "skipped": ["book"],
        "kernels": {"mmbook-cpu": cpu, "mmbook-gpu": {"skipped": "no CUDA device"}},
        "book": {"skipped": "--skip book"},
    }


def test_format_table_flags_what_matters():
    text = bench.format_table(fake_report())
    lines = {}  # first line starting with each word: the notebook table comes first
    for line in text.splitlines():
        if line.strip():
            lines.setdefault(line.split()[0], line)
    assert "OVER BUDGET" in lines["chapters/b.ipynb"]
    assert "OVER BUDGET" not in lines["chapters/a.ipynb"]
    assert "FAILED: CellExecutionError: boom" in lines["chapters/c.ipynb"]
    assert "16.5" in lines["total"] and "300" in lines["total"]
    assert "mmbook-gpu: skipped (no CUDA device)" in text
    assert "100 GFLOP/s" in text  # the peak
    assert "'big': 10 steps in 4.0 s, 160 samples/s, 2.5 GFLOP/s, 2.5%" in text
    assert "nbval: 20.0 s for make, 18.0 s in notebooks, passed" in text
    assert "make book: skipped (--skip book)" in text
    assert "    met      whole book in 300 s or less: 16.5 s" in text
    assert "    NOT MET  heaviest training run at 30% of the matmul peak or more" in text


# ---------------------------------------------------------------------------- mmlib/bench.py
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
    "kwargs, error, match",
    [
        ({"size": 0}, ValueError, "size must be >= 1"),
        ({"size": 2.5}, TypeError, "size must be an int"),
        ({"repeats": 0}, ValueError, "repeats must be >= 1"),
        ({"repeats": True}, TypeError, "repeats must be an int"),
        ({"dtype": torch.int64}, TypeError, "dtype must be one of"),
        ({"dtype": "float32"}, TypeError, "dtype must be one of"),
        ({"device": 0}, TypeError, "device must be a str"),
        ({"device": "abacus"}, ValueError, "device must name a torch device"),
    ],
)
def test_measure_matmul_flops_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        mmbench.measure_matmul_flops(**({"size": 4, "repeats": 1, "device": "cpu"} | kwargs))


@pytest.mark.parametrize("size, error", [(0, ValueError), (3.0, TypeError), (None, TypeError)])
def test_matmul_flop_count_rejects_bad_sizes(size, error):
    with pytest.raises(error, match="size must"):
        mmbench.matmul_flop_count(size)


def test_measure_matmul_flops_rejects_a_missing_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no cuda device is available"):
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
    with pytest.raises(TypeError, match="event must be a profiler event"):
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
    with pytest.raises(ValueError, match="k must be >= 1"):
        profile.top_ops(0)


def test_profile_step_restores_stderr_when_the_step_fails(capfd):
    def failing():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        mmbench.profile_step(failing, device="cpu")
    os.write(2, b"still here\n")
    assert "still here" in capfd.readouterr().err


@pytest.mark.parametrize(
    "step, device, error, match",
    [
        ("train", "cpu", TypeError, "step must be a function"),
        (lambda: None, "abacus", ValueError, "device must name a torch device"),
        (lambda: None, 3, TypeError, "device must be a str"),
    ],
)
def test_profile_step_rejects_bad_arguments(step, device, error, match):
    with pytest.raises(error, match=match):
        mmbench.profile_step(step, device=device)


def test_best_time_warms_up_then_keeps_the_fastest_call(monkeypatch):
    clock = iter([0.0, 10.0, 13.0, 20.0, 21.0, 30.0, 32.0])  # warm-up, then calls of 3, 1, 2 s
    monkeypatch.setattr(mmbench.time, "perf_counter", lambda: next(clock))
    calls = []
    assert mmbench.best_time(lambda: calls.append(1), repeats=3, device="cpu") == 1.0
    assert len(calls) == 4  # one untimed warm-up call, then three timed ones


def test_best_time_rejects_bad_arguments():
    with pytest.raises(TypeError, match="fn must be a callable"):
        mmbench.best_time(3, device="cpu")
    with pytest.raises(ValueError, match="repeats"):
        mmbench.best_time(lambda: None, repeats=0, device="cpu")

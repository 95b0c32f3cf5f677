"""The notebook time-budget check can fail: a notebook over its budget fails the nbval run.

Budgets are judged in the statistics page machine's seconds: wall-clock time times the machine's
speed against that machine, read before and after each notebook, at most 1."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "budget, mode, expected_rc", [(1, "enforce", 1), (60, "enforce", 0), (1, "report", 0)]
)
def test_budget_is_enforced(tmp_path, budget, mode, expected_rc):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(1.5)")]
    nb.metadata["mmbook"] = {"budget_s": budget}
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    check = "1" if mode == "report" else "0"  # the machine check once: it takes seconds
    # A sleep is not slowed by a slow machine: the enforcing runs judge wall-clock seconds; the
    # reporting run takes the speed readings and judges in the page machine's seconds.
    clock = "reference" if mode == "report" else "wall"
    env = dict(
        os.environ,
        MMBOOK_NBVAL_REPORT_DIR=str(tmp_path),
        MMBOOK_BUDGETS=mode,
        MMBOOK_MACHINE_CHECK=check,
        MMBOOK_BUDGET_CLOCK=clock,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-kernel-name",
            "mmbook-cpu",
            "-p",
            "tests.nbval_budget",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == expected_rc, result.stdout[-2000:]
    report = json.loads((tmp_path / "nbval-times-mmbook-cpu.json").read_text())
    for when in ("before", "after"):
        said = f"machine check {when} the notebooks: a reference training step" in result.stdout
        assert said == (check == "1")
        if check == "1":  # milliseconds per reference step, and the second thread's speed-up
            assert report["machine_check"][when]["two_threads_ms"] > 0
            assert report["machine_check"][when]["speedup"] > 0
            assert report["machine_check"][when]["matmul_gflops"] > 0
        else:
            assert report["machine_check"][when] is None
    assert report["clock"] == clock
    if clock == "reference":  # a reading before the notebook and one after it
        readings = report["readings_gflops"]
        assert list(readings) == ["slow.ipynb", "after the last"], readings
        assert all(value > 0 for value in readings.values())
        (speed,) = report["speed"].values()
        assert 0 < speed <= 1
        assert report["judged_total"] == pytest.approx(report["total"] * speed)
        assert "x " + f"{speed:.2f}" in result.stdout
    else:
        assert report["readings_gflops"] == {} and report["speed"] == {}
        assert report["judged_total"] == report["total"]
    if budget == 1 and clock == "wall":  # over budget
        assert "BUDGET EXCEEDED" in result.stdout
        assert "(reported only)" not in result.stdout


def test_speed_is_the_mean_of_the_readings_around_a_notebook_at_most_one():
    from tests.nbval_budget import speeds

    order = ["a.ipynb", "b.ipynb", "c.ipynb"]
    got = speeds(order, [40.0, 60.0, 200.0, 300.0], 100.0)
    assert got == {"a.ipynb": 0.5, "b.ipynb": 1.0, "c.ipynb": 1.0}  # faster: wall clock
    assert speeds(order, [40.0, None, 40.0, 40.0], 100.0) == {
        "a.ipynb": 1.0,  # a failed reading: wall clock
        "b.ipynb": 1.0,
        "c.ipynb": 0.4,
    }
    assert set(speeds(order, [40.0] * 4, None).values()) == {1.0}  # no reference
    assert speeds(order, [40.0, 40.0], 100.0)["b.ipynb"] == 1.0  # the run stopped early


def test_judged_time_is_wall_time_times_speed_and_can_fail():
    from tests.nbval_budget import judge

    times = {"a.ipynb": 58.0, "b.ipynb": 90.0}
    budgets = {"a.ipynb": 45.0, "b.ipynb": 50.0}
    rows, over = judge(times, budgets, {"a.ipynb": 0.5, "b.ipynb": 0.5})
    assert rows == [("a.ipynb", 58.0, 29.0, 45.0), ("b.ipynb", 90.0, 45.0, 50.0)]
    assert over == []
    rows, over = judge(times, budgets, {"a.ipynb": 0.5, "b.ipynb": 0.6})
    assert over == ["b.ipynb: 90.0 s wall = 54.0 s on the page's machine > 50 s"]
    _, over = judge(times, budgets, {})  # speed 1: wall clock
    assert over == ["a.ipynb: 58.0 s > 45 s", "b.ipynb: 90.0 s > 50 s"]
    _, over = judge({"a.ipynb": 500.0}, {"a.ipynb": 60.0, "b.ipynb": 60.0}, {"a.ipynb": 0.1})
    assert over == []  # 50 s judged
    many = {f"{i}.ipynb": 50.0 for i in range(8)}
    _, over = judge(many, {}, {path: 0.9 for path in many})  # 8 x 45 s = 360 s
    assert over == ["whole book: 400.0 s wall = 360.0 s on the page's machine > 300 s"]
    _, over = judge({"a.ipynb": 100.0}, {"a.ipynb": 120.0}, {})  # the most a page may declare
    assert over == ["a.ipynb: 100.0 s > 60 s"]


def test_machine_check_describes_a_failed_check():
    from tools.machine_check import describe

    assert describe(None) == "machine check: did not run"
    assert describe(None, "after the notebooks") == "machine check after the notebooks: did not run"
    line = describe({"two_threads_ms": 40.0, "one_thread_ms": 52.0, "speedup": 1.3})
    assert "40 ms on 2 threads, 52 ms on 1" in line and "1.30x" in line


def test_machine_check_sets_the_matmul_against_the_statistics_page(tmp_path):
    from tools.machine_check import describe, reference

    check = {"two_threads_ms": 40.0, "one_thread_ms": 52.0, "speedup": 1.3, "matmul_gflops": 41.0}
    assert "matmul ran at 41 GFLOP/s (python" in describe(check)
    check_cpu = dict(check, cpu="AMD EPYC, family 23, model 1, 1996 MHz")
    assert "; CPU: AMD EPYC, family 23, model 1, 1996 MHz (python" in describe(check_cpu)
    ref = {"cpu": "AMD EPYC", "date": "2026-12-04 02:37 UTC", "matmul_gflops": 134.0}
    ref["book_s"] = 251.6
    line = describe(check, "after the notebooks", ref)
    assert "41 GFLOP/s, 0.31 of the 134 GFLOP/s" in line and "whole book 252 s" in line
    committed = reference()  # book/bench/report.json, written by make bench and make stats
    assert committed is not None and committed["matmul_gflops"] > 1 and committed["book_s"] > 1
    assert reference(tmp_path / "missing.json") is None
    (tmp_path / "partial.json").write_text('{"machine": {"cpu": "x"}}')
    assert reference(tmp_path / "partial.json") is None


def test_cpu_kind_reads_the_first_processor(tmp_path):
    from tools.machine_check import cpu_kind

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\n"
        "model name\t: AMD EPYC\ncpu MHz\t\t: 1996.250\n\nprocessor\t: 1\nmodel\t\t: 9\n"
    )
    assert cpu_kind(info) == "AMD EPYC, family 23, model 1, 1996 MHz"
    assert cpu_kind(tmp_path / "missing")  # the platform's name, or "unknown CPU"

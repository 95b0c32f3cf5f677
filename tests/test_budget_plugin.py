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
    # A sleep is not slowed by a slow machine: the enforcing runs judge wall-clock seconds.
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
    speed = report["speed"]
    assert speed["speed"] == 1.0  # no page-timed notebook in this run: wall-clock seconds
    if clock == "reference":
        assert speed["by_pages"] is None and speed["known"] == []
        assert speed["by_matmul"] > 0  # the machine check's matmul, against the page's
        assert (
            "no notebooks of known page seconds to set the speed: wall-clock seconds"
            in result.stdout
        )
    else:
        assert "MMBOOK_BUDGET_CLOCK=wall" in result.stdout
    assert report["judged_total"] == report["total"]
    assert list(report["fingerprints"]) == ["slow.ipynb"]
    if budget == 1:  # over budget: said in either mode
        assert "BUDGET EXCEEDED" in result.stdout
        assert ("(reported only)" in result.stdout) == (mode == "report")


REF = {
    "seconds": {"a.ipynb": 40.0, "b.ipynb": 30.0, "c.ipynb": 20.0},
    "fingerprints": {"a.ipynb": "fa", "b.ipynb": "fb", "c.ipynb": "fc"},
    "matmul_gflops": 100.0,
    "cpu": "AMD EPYC",
    "date": "2026-12-04 02:37 UTC",
    "calibration": {},
}


def test_a_changed_notebook_counts_when_its_code_was_timed_beside_the_pages_copy():
    from tests.nbval_budget import speed_of
    from tools.budgets import page_seconds

    ref = dict(REF, calibration={"c.ipynb": {"ratio": 2.0, "baseline": "fc", "new": "fc2"}})
    assert page_seconds(ref, "c.ipynb", "fc") == 20.0  # unchanged
    assert page_seconds(ref, "c.ipynb", "fc2") == 40.0  # changed, timed at 2x the page's copy
    assert page_seconds(ref, "c.ipynb", "fc3") is None  # changed again since
    assert page_seconds(ref, "d.ipynb", "fd") is None  # not in the page's run
    stale = dict(REF, calibration={"c.ipynb": {"ratio": 2.0, "baseline": "old", "new": "fc2"}})
    assert page_seconds(stale, "c.ipynb", "fc2") is None  # timed against another copy
    times = {"a.ipynb": 80.0, "b.ipynb": 60.0, "c.ipynb": 100.0}
    now = {"a.ipynb": "new", "b.ipynb": "fb", "c.ipynb": "fc2"}
    got = speed_of(times, now, ref, [30.0])  # b: 30 s there, c: 40 s there
    assert got["known"] == ["b.ipynb", "c.ipynb"] and got["by_pages"] == 70.0 / 160.0


def test_speed_is_the_larger_of_two_estimates_at_most_one():
    from tests.nbval_budget import speed_of

    times = {"a.ipynb": 80.0, "b.ipynb": 60.0, "c.ipynb": 90.0}
    now = {"a.ipynb": "fa", "b.ipynb": "fb", "c.ipynb": "changed"}
    got = speed_of(times, now, REF, [30.0, 50.0])  # a and b took twice as long as on the page
    assert got["known"] == ["a.ipynb", "b.ipynb"]
    assert got["by_pages"] == 0.5 and got["by_matmul"] == 0.4 and got["speed"] == 0.5
    assert (
        "0.50 by 2 notebooks of known page seconds (70 s there), 0.40 by the matmul" in got["why"]
    )
    # mmlib made every notebook twice as slow: the unchanged ones no longer tell, the matmul does
    slower = {path: 2 * seconds for path, seconds in times.items()}
    assert speed_of(slower, now, REF, [30.0, 50.0])["speed"] == 0.4
    assert speed_of(times, now, REF, [300.0])["speed"] == 1.0  # a faster machine: wall clock
    fast = {path: seconds / 4 for path, seconds in times.items()}
    assert speed_of(fast, now, REF, [40.0])["speed"] == 1.0


def test_speed_is_one_without_either_estimate():
    from tests.nbval_budget import speed_of

    times = {"a.ipynb": 80.0, "b.ipynb": 60.0, "c.ipynb": 90.0}
    now = {"a.ipynb": "fa", "b.ipynb": "fb", "c.ipynb": "fc"}
    assert speed_of(times, now, None, [40.0])["speed"] == 1.0
    got = speed_of(times, now, REF, [])  # machine check off
    assert got["speed"] == 1.0 and "no matmul reading" in got["why"]
    edited = {"a.ipynb": "new", "b.ipynb": "new", "c.ipynb": "fc"}  # 20 s unchanged: too few
    got = speed_of(times, edited, REF, [40.0])
    assert (
        got["speed"] == 1.0
        and got["by_pages"] is None
        and "no notebooks of known page seconds" in got["why"]
    )


def test_judged_time_is_wall_time_times_speed_and_can_fail():
    from tests.nbval_budget import judge

    times = {"a.ipynb": 58.0, "b.ipynb": 90.0}
    budgets = {"a.ipynb": 45.0, "b.ipynb": 50.0}
    rows, over = judge(times, budgets, 0.5)
    assert rows == [("a.ipynb", 58.0, 29.0, 45.0), ("b.ipynb", 90.0, 45.0, 50.0)]
    assert over == []
    _, over = judge(times, budgets, 0.6)
    assert over == ["b.ipynb: 90.0 s wall x 0.60 = 54.0 s > 50 s"]
    _, over = judge(times, budgets)  # speed 1: wall clock
    assert over == ["a.ipynb: 58.0 s > 45 s", "b.ipynb: 90.0 s > 50 s"]
    many = {f"{i}.ipynb": 50.0 for i in range(8)}
    _, over = judge(many, {}, 0.9)  # 8 x 45 s = 360 s
    assert over == ["whole book: 400.0 s wall x 0.90 = 360.0 s > 300 s"]
    _, over = judge({"a.ipynb": 100.0}, {"a.ipynb": 120.0})  # the most a page may declare
    assert over == ["a.ipynb: 100.0 s > 60 s"]


def test_the_page_run_fingerprints_notebooks_by_their_code(tmp_path):
    from tools.budgets import fingerprint, reference

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("prose"), nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "a.ipynb"
    nbformat.write(nb, path)
    first = fingerprint(path)
    nb.cells[0].source = "other prose"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1")]
    nbformat.write(nb, path)
    assert fingerprint(path) == first  # prose and outputs do not count
    nb.cells[1].source = "x = 2"
    nbformat.write(nb, path)
    assert fingerprint(path) != first
    committed = reference()  # book/bench/report.json: seconds and fingerprints of each notebook
    assert committed is not None and set(committed["seconds"]) == set(committed["fingerprints"])
    assert sum(committed["seconds"].values()) <= 300 and committed["matmul_gflops"] > 1
    for nb, cal in committed["calibration"].items():  # book/bench/calibration.json, if any
        assert cal["baseline"] == committed["fingerprints"][nb] and cal["ratio"] > 0
    assert reference(tmp_path / "missing.json") is None
    assert reference(calibration=tmp_path / "missing.json")["calibration"] == {}
    (tmp_path / "cal.json").write_text(
        '{"notebooks": {"x.ipynb": {"ratio": null, "fingerprints": {"baseline": "a", "new": "b"}},'
        ' "y.ipynb": {"ratio": 1.5, "fingerprints": {"baseline": "a", "new": "b"}}}}'
    )
    assert reference(calibration=tmp_path / "cal.json")["calibration"] == {
        "y.ipynb": {"ratio": 1.5, "baseline": "a", "new": "b"}
    }
    (tmp_path / "rounds.json").write_text(  # two rounds: 67.5 / 100.1 and 74.1 / 73.6
        '{"notebooks": {"y.ipynb": {"ratio": 0.82, "fingerprints": {"baseline": "a", "new": "b"},'
        ' "runs": {"baseline": [100.1, 73.6], "new": [67.5, 74.1]}}}}'
    )
    got = reference(calibration=tmp_path / "rounds.json")["calibration"]["y.ipynb"]["ratio"]
    assert got == 74.1 / 73.6  # the slowest round, not the median


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

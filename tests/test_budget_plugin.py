"""The notebook time-budget check can fail: a notebook over its budget fails the nbval run."""

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
    env = dict(
        os.environ,
        MMBOOK_NBVAL_REPORT_DIR=str(tmp_path),
        MMBOOK_BUDGETS=mode,
        MMBOOK_MACHINE_CHECK=check,
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
    if budget == 1:  # over budget: said in either mode
        assert "BUDGET EXCEEDED" in result.stdout
        assert ("(reported only)" in result.stdout) == (mode == "report")


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
    ref = {"cpu": "AMD EPYC", "date": "2026-12-04 02:37 UTC", "matmul_gflops": 134.0}
    ref["book_s"] = 251.6
    line = describe(check, "after the notebooks", ref)
    assert "41 GFLOP/s, 0.31 of the 134 GFLOP/s" in line and "whole book 252 s" in line
    committed = reference()  # book/bench/report.json, written by make bench and make stats
    assert committed is not None and committed["matmul_gflops"] > 1 and committed["book_s"] > 1
    assert reference(tmp_path / "missing.json") is None
    (tmp_path / "partial.json").write_text('{"machine": {"cpu": "x"}}')
    assert reference(tmp_path / "partial.json") is None

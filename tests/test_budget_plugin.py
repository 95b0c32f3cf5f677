"""The notebook time-budget check can fail: a notebook over its budget fails the nbval run."""

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
    env = dict(os.environ, MMBOOK_NBVAL_REPORT_DIR=str(tmp_path), MMBOOK_BUDGETS=mode)
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
    assert (tmp_path / "nbval-times-mmbook-cpu.json").exists()
    if budget == 1:  # over budget: said in either mode
        assert "BUDGET EXCEEDED" in result.stdout
        assert ("(reported only)" in result.stdout) == (mode == "report")

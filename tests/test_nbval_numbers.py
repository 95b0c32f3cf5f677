"""tests/nbval_numbers.py: numbers compared within their declared tolerance, and able to fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from tests.nbval_numbers import reconcile_text
from tools.execute_notebook import eval_expressions, execute

ROOT = Path(__file__).resolve().parents[1]


def test_numbers_within_their_range_are_reconciled():
    ref = "early 0.883  params 68,090  6.7 s"
    new = "early 0.871  params 68,090  9.1 s"
    text, why = reconcile_text(ref, new, [[0.8, 0.95], None, "any"], None)
    assert text == ref and why == []


def test_a_number_outside_its_band_is_reported():
    text, why = reconcile_text("acc 0.883", "acc 0.700", [[0.8, 0.95]], None)
    assert text == "acc 0.700"
    assert why == ["number 1 of 1: 0.700 is outside the declared range [0.8, 0.95] (stored: 0.883)"]


def test_cell_tolerance_and_exact_numbers():
    assert reconcile_text("loss 0.41", "loss 0.44", None, {"abs": 0.05})[1] == []
    assert reconcile_text("loss 0.41", "loss 0.50", None, {"abs": 0.05})[1]
    assert reconcile_text("x 10.0", "x 10.9", None, {"rel": 0.1})[1] == []
    # no tolerance declared: a different number is reported
    assert "no tolerance" in reconcile_text("n 12", "n 13", None, None)[1][0]


def test_words_and_counts_must_match_exactly():
    # different words: left to nbval's own diff (the texts differ, nothing reconciled)
    assert reconcile_text("acc 0.883 on track", "acc 0.883 OFF TRACK", [[0, 1]], None)[0] == (
        "acc 0.883 OFF TRACK"
    )
    assert reconcile_text("a 1 b 2", "a 1 b", None, {"abs": 5})[0] == "a 1 b"
    # wider columns are not a difference
    assert reconcile_text("x   0.9", "x  0.95", [[0.8, 1.0]], None) == ("x   0.9", [])


def test_eval_expressions_are_found_in_order_once():
    text = "Got {eval}`acc` and {eval}``r['a']`` then {eval}`acc` again; `code` {eval}`b.band`."
    assert eval_expressions(text) == ["acc", "r['a']", "b.band"]


def _nbval(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--nbval",
            "-p",
            "tests.nbval_numbers",
            "--nbval-kernel-name",
            "mmbook-cpu",
            "--rootdir",
            str(path.parent),
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=path.parent,
        env=env,
        timeout=300,
    )


def test_nbval_passes_a_rerun_and_fails_a_value_moved_out_of_its_band(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "mmbook-cpu", "display_name": "mmbook (CPU)"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import random\nfrom mmlib.book.results import Number, show_table\n"
            "acc = Number(0.88 + random.random() / 100, tol=0.02)\n"
            "show_table({'model': {'acc': acc, 'params': 68090}})\n"
            "print(f'loss {0.41 + random.random() / 100:.3f} after 100 steps')"
        ),
        nbformat.v4.new_markdown_cell("The model reaches {eval}`acc`."),
    ]
    nb.cells[0].metadata["mmbook"] = {"tolerance": {"abs": 0.02}}
    good = tmp_path / "good.ipynb"
    nbformat.write(nb, good)
    execute(good)
    stored = nbformat.read(good, as_version=4)
    assert stored.cells[1].metadata.user_expressions[0]["expression"] == "acc"
    run = _nbval(good)  # a re-run prints another random value within the tolerance
    assert run.returncode == 0, run.stdout[-2000:]

    moved = nbformat.read(good, as_version=4)
    assert moved.cells[0].outputs[1].output_type == "stream"
    out = moved.cells[0].outputs[0]
    out.data["text/plain"] = out.data["text/plain"].replace("0.88", "0.95", 1)
    out.metadata["mmbook"]["numbers"][0] = [0.94, 0.96]
    bad = tmp_path / "bad.ipynb"
    nbformat.write(moved, bad)
    run = _nbval(bad)
    assert run.returncode != 0
    assert "outside the declared range [0.94, 0.96]" in run.stdout

    prose = nbformat.read(good, as_version=4)
    result = prose.cells[1].metadata.user_expressions[0]["result"]
    result["data"]["text/plain"] = "0.990"
    result["metadata"]["mmbook"]["numbers"] = [[0.98, 1.0]]
    bad_prose = tmp_path / "bad_prose.ipynb"
    nbformat.write(prose, bad_prose)
    run = _nbval(bad_prose)
    assert run.returncode != 0
    assert "markdown cell 1, {eval}`acc`" in run.stdout and "[0.98, 1]" in run.stdout

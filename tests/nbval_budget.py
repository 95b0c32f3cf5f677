"""pytest plugin for nbval runs: time each notebook and enforce its declared budget.

Each notebook declares ``metadata.mmbook.budget_s`` (at most 60 s); the whole book may take
at most 300 s (both limits from ``tools/budgets.py``), on the slower kind of 2-core machine.
Time is measured from the kernel's start to the last cell, as nbval runs it.
Load with ``-p tests.nbval_budget``. Writes ``_build/nbval-times-<kernel>.json``.

**Which seconds.** The budgets are judged in seconds of the statistics page's machine
(``book/bench/report.json``, the slower kind: an AMD EPYC that ran the book in 252 s), because
machines under the same name are not all that machine (``tools/machine_check.py``: some are
first-generation Zen cores, whose matmul peak is below the page machine's measured rate). A
run's *speed* against the page's machine is estimated twice, from this run alone:

- **by the notebooks the page's seconds are known for**: those whose code cells are as the page
  timed them (``tools.budgets.fingerprint``), and those changed since whose very code was timed
  side by side with the page's copy (``make calibrate``: their page seconds times that ratio);
  those seconds over this run's seconds of the same notebooks;
- **by the matmul**: the mean of this run's machine-check readings, before the first notebook
  and after the last, over the page machine's rate.

The speed is the larger of the two, at most 1, and every notebook's judged time is its wall-clock
time times the speed. The larger is the stricter: the matmul alone reads a slow machine slower
than the book runs there, and the notebooks alone would hide a change in ``mmlib`` that
slows every notebook. The matmul sees such a change only once it pulls the notebooks' estimate
below its own (on the first-generation Zen machines, 0.61-0.70 against 0.48-0.50: a slowdown of
27 to 40 %); short of that, when every notebook's page seconds are known, the whole-book figure
is their sum on the page's machine whatever this run's wall clock (two runs on 2026-12-05, 405 s
and 467 s wall, both 285.1 s). Per-notebook verdicts still move with the run. The first
estimate is only as good as the notebooks it rests on: on a
first-generation Zen machine (2026-12-05) the eight unchanged notebooks, light ones, ran at 1.72x
their page seconds, while the heavy chapters 5 and 6.1, at the page's commit, ran at 2.2x and
2.3x theirs. Without the calibrated heavy pages the estimate reads the machine too fast, and
every heavy page too slow. Without either estimate (no report, fewer than
``MIN_CALIBRATION_S`` seconds of notebooks of known page seconds, the machine check off or
failed) the speed is 1: wall-clock seconds. A faster machine is always held to its wall clock.
``MMBOOK_BUDGET_CLOCK=wall`` judges wall-clock seconds. The report prints both times.

With ``MMBOOK_BUDGETS=report`` the times are reported but an exceeded budget does not fail the
run: ``make nbval-rounding`` runs on one CPU thread, slower than the two the budgets are set for,
and checks the outputs only.

The machine check (``tools/machine_check.py``: the CPU's name, family and model, a reference
training step on two threads and on one, and the matmul) runs in a fresh process before the
first notebook and after the last; ``MMBOOK_MACHINE_CHECK=0`` leaves it out.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

from tools import machine_check
from tools.budgets import (
    BOOK_BUDGET_S,
    MIN_CALIBRATION_S,
    NOTEBOOK_MAX_BUDGET_S,
    budget_of,
    fingerprint,
    page_seconds,
    reference,
)

_times: dict[str, float] = defaultdict(float)
_budgets: dict[str, float] = {}
_fingerprints: dict[str, str] = {}
_over: list[str] = []
_machine: dict = {}


def _notebook_of(item) -> Path | None:
    path = Path(str(getattr(item, "path", item.fspath)))
    return path if path.suffix == ".ipynb" else None


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _times[path] += report.duration


def _check_machine() -> bool:
    """Whether to run the machine check (not with ``MMBOOK_MACHINE_CHECK=0``)."""
    return os.environ.get("MMBOOK_MACHINE_CHECK", "1") != "0"


def _reference_clock() -> bool:
    """Whether budgets are judged in the page machine's seconds (not with
    ``MMBOOK_BUDGET_CLOCK=wall``)."""
    return os.environ.get("MMBOOK_BUDGET_CLOCK", "reference") != "wall"


def pytest_sessionstart(session):
    if _check_machine():  # the machine's state before the first notebook, and after the last
        _machine["before"] = machine_check.run()


def pytest_collection_modifyitems(items):
    for item in items:
        nb = _notebook_of(item)
        key = item.nodeid.split("::")[0]
        if nb is not None and key not in _budgets:
            budget = budget_of(nb)
            _budgets[key] = NOTEBOOK_MAX_BUDGET_S if budget is None else budget
            _fingerprints[key] = fingerprint(nb)


def speed_of(
    times: dict[str, float],
    fingerprints: dict[str, str],
    ref: dict | None,
    matmul_gflops: list[float],
) -> dict:
    """This run's speed against the page's machine (``ref``, from ``tools.budgets.reference``).

    Returns ``speed`` (what the times are multiplied by), ``by_pages`` and ``by_matmul`` (the two
    estimates, None when missing), ``known`` (the notebooks whose page seconds are known,
    unchanged or calibrated) and ``why`` (one line for the report)."""
    out = {"speed": 1.0, "by_pages": None, "by_matmul": None, "known": []}
    if ref is None:
        return dict(out, why="no statistics page report: wall-clock seconds")
    there = {path: page_seconds(ref, path, fingerprints.get(path)) for path in times}
    same = sorted(path for path, seconds in there.items() if seconds is not None)
    then = sum(there[path] for path in same)
    out["known"] = same
    if then >= MIN_CALIBRATION_S:
        out["by_pages"] = then / max(sum(times[path] for path in same), 1e-9)
    if matmul_gflops:
        out["by_matmul"] = sum(matmul_gflops) / len(matmul_gflops) / ref["matmul_gflops"]
    if out["by_pages"] is None or out["by_matmul"] is None:
        missing = "notebooks of known page seconds" if out["by_pages"] is None else "matmul reading"
        return dict(out, why=f"no {missing} to set the speed: wall-clock seconds")
    out["speed"] = min(1.0, max(out["by_pages"], out["by_matmul"]))
    why = (
        f"speed against the statistics page's machine ({ref['cpu']}, {ref['date']}):"
        f" {out['by_pages']:.2f} by {len(same)} notebooks of known page seconds ({then:.0f} s"
        " there),"
        f" {out['by_matmul']:.2f} by the matmul; judged at {out['speed']:.2f}"
    )
    return dict(out, why=why)


def judge(
    times: dict[str, float], budgets: dict[str, float], speed: float = 1.0
) -> tuple[list[tuple[str, float, float, float]], list[str]]:
    """Rows (notebook, wall seconds, judged seconds, budget) and every exceeded budget.

    Judged seconds are wall-clock seconds times ``speed``."""
    rows, over = [], []
    for path, seconds in sorted(times.items()):
        budget = min(budgets.get(path, NOTEBOOK_MAX_BUDGET_S), NOTEBOOK_MAX_BUDGET_S)
        rows.append((path, seconds, seconds * speed, budget))
        if seconds * speed > budget:
            over.append(f"{path}: {_said(seconds, speed)} > {budget:.0f} s")
    wall = sum(times.values())
    if wall * speed > BOOK_BUDGET_S:
        over.append(f"whole book: {_said(wall, speed)} > {BOOK_BUDGET_S:.0f} s")
    return rows, over


def _said(wall: float, speed: float) -> str:
    """ "58.2 s", or "58.2 s wall x 0.52 = 30.3 s" when the speed is not 1."""
    if speed == 1.0:
        return f"{wall:.1f} s"
    return f"{wall:.1f} s wall x {speed:.2f} = {wall * speed:.1f} s"


def _speed() -> dict:
    if not _reference_clock():
        return {"speed": 1.0, "why": "MMBOOK_BUDGET_CLOCK=wall: wall-clock seconds"}
    readings = [
        check["matmul_gflops"]
        for check in (_machine.get("before"), _machine.get("after"))
        if check and check.get("matmul_gflops")
    ]
    return speed_of(dict(_times), _fingerprints, reference(), readings)


def _enforced() -> bool:
    """Whether an exceeded budget fails the run (not with ``MMBOOK_BUDGETS=report``)."""
    return os.environ.get("MMBOOK_BUDGETS", "enforce") != "report"


def _evaluate() -> tuple[list[tuple[str, float, float, float]], dict]:
    """Rows (notebook, wall seconds, judged seconds, budget) and the speed; fills ``_over``."""
    speed = _speed()
    rows, over = judge(dict(_times), _budgets, speed["speed"])
    _over[:] = over
    return rows, speed


def pytest_sessionfinish(session, exitstatus):
    if not _times:
        return
    if _check_machine():
        _machine["after"] = machine_check.run()
    rows, speed = _evaluate()
    kernel = session.config.getoption("nbval_kernel_name", None) or "notebook-kernel"
    out = Path(os.environ.get("MMBOOK_NBVAL_REPORT_DIR", "_build"))
    out.mkdir(exist_ok=True)
    report = {
        "kernel": kernel,
        "seconds": dict(_times),
        "budgets": _budgets,
        "fingerprints": _fingerprints,
        "total": sum(_times.values()),
        "speed": speed,
        "judged_total": sum(row[2] for row in rows),
        "over": _over,
        "machine_check": {k: _machine.get(k) for k in ("before", "after")},
    }
    (out / f"nbval-times-{kernel}.json").write_text(json.dumps(report, indent=1))
    if _over and _enforced() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    if not _times:
        return
    write = terminalreporter.write_line
    kernel = config.getoption("nbval_kernel_name", None) or "notebook-kernel"
    rows, speed = _evaluate()
    factor = speed["speed"]
    write(f"\nnotebook times on kernel {kernel}: wall clock x {factor:.2f} = judged [budget]:")
    for path, seconds, judged, budget in rows:
        flag = "  OVER BUDGET" if judged > budget else ""
        write(f"  {path:45s} {seconds:6.1f} s  {judged:6.1f} s  [{budget:.0f} s]{flag}")
    wall = sum(_times.values())
    write(f"  {'total':45s} {wall:6.1f} s  {wall * factor:6.1f} s  [{BOOK_BUDGET_S:.0f} s]")
    write(speed["why"])
    ref = machine_check.reference()
    for when in ("before", "after"):
        if when in _machine:
            write(machine_check.describe(_machine[when], f"{when} the notebooks", ref))
    for line in _over:
        write(f"BUDGET EXCEEDED: {line}" + ("" if _enforced() else " (reported only)"), red=True)

"""pytest plugin for nbval runs: time each notebook and enforce its declared budget.

Each notebook declares ``metadata.mmbook.budget_s`` (at most 60 s); the whole book may take
at most 300 s (both limits from ``tools/budgets.py``), on the slower of the 2-core machines.
Time is measured from the kernel's start to the last cell, as nbval runs it.
Load with ``-p tests.nbval_budget``. Writes ``_build/nbval-times-<kernel>.json``.

The budgets are judged in seconds of the statistics page's machine (``book/bench/report.json``:
an AMD EPYC, the slower kind, whole book 252 s), because machines under the same name differ
by more than the budgets' headroom (``tools/machine_check.py``: 134 against 36 to 63 GFLOP/s).
Before each notebook, and after the last, the plugin reads the machine's matmul rate
(``tools.machine_check.matmul_gflops``, about a second, outside the notebook's time); a
notebook's *speed* is the mean of the readings before and after it over the page machine's rate,
at most 1, and its judged time is its wall-clock time times that speed. A slower machine is so
judged as if it were the page's; a faster one is held to its wall-clock time. Without the
reference, or when a reading fails, speed is 1. ``MMBOOK_BUDGET_CLOCK=wall`` judges wall-clock
seconds and takes no readings. The report prints both times.

With ``MMBOOK_BUDGETS=report`` the times are reported but an exceeded budget does not fail the
run: ``make nbval-rounding`` runs on one CPU thread, slower than the two the budgets are set for,
and checks the outputs only.

Under the times it prints a machine check from the same run, before the first notebook and after
the last (``tools/machine_check.py``: a reference training step on two threads and on one, and
a matmul rate set against the statistics page's measured machine), so that a report shows the
machine's speed at those two moments; ``MMBOOK_MACHINE_CHECK=0`` leaves it out. It never changes
the verdict.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

from tools import machine_check
from tools.budgets import BOOK_BUDGET_S, NOTEBOOK_MAX_BUDGET_S, budget_of

_times: dict[str, float] = defaultdict(float)
_budgets: dict[str, float] = {}
_over: list[str] = []
_machine: dict = {}
_order: list[str] = []  # notebooks in the order they ran
_readings: list[float | None] = []  # matmul GFLOP/s before each notebook, and after the last


def _notebook_of(item) -> Path | None:
    path = Path(str(getattr(item, "path", item.fspath)))
    return path if path.suffix == ".ipynb" else None


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _times[path] += report.duration


def _reference_clock() -> bool:
    """Whether budgets are judged in the page machine's seconds (not with
    ``MMBOOK_BUDGET_CLOCK=wall``)."""
    return os.environ.get("MMBOOK_BUDGET_CLOCK", "reference") != "wall"


def _reading() -> float | None:
    """The matmul rate now, in GFLOP/s; None if it fails."""
    try:
        return machine_check.matmul_gflops()
    except Exception:  # noqa: BLE001 - a failed reading leaves the notebook at speed 1
        return None


def pytest_runtest_logstart(nodeid, location):
    # Called before an item's setup, outside the time its report measures.
    path = nodeid.split("::")[0]
    if path.endswith(".ipynb") and (not _order or _order[-1] != path):
        _order.append(path)
        if _reference_clock():
            _readings.append(_reading())


def speeds(
    order: list[str], readings: list[float | None], reference_gflops: float | None
) -> dict[str, float]:
    """Each notebook's speed against the page machine: the mean of the readings before and after
    it over ``reference_gflops``, at most 1; 1 without a reference or without both readings.

    ``readings`` has one more entry than ``order`` (the last is taken after the last notebook)."""
    result = {}
    for i, path in enumerate(order):
        pair = readings[i : i + 2]
        if reference_gflops is None or len(pair) < 2 or None in pair:
            result[path] = 1.0
        else:
            result[path] = min(1.0, sum(pair) / 2 / reference_gflops)
    return result


def judge(
    times: dict[str, float], budgets: dict[str, float], speed: dict[str, float]
) -> tuple[list[tuple[str, float, float, float]], list[str]]:
    """Rows (notebook, wall seconds, judged seconds, budget) and every exceeded budget.

    A notebook's judged seconds are its wall-clock seconds times its ``speed`` (1 if absent)."""
    rows, over = [], []
    for path, seconds in sorted(times.items()):
        budget = min(budgets.get(path, NOTEBOOK_MAX_BUDGET_S), NOTEBOOK_MAX_BUDGET_S)
        judged = seconds * speed.get(path, 1.0)
        rows.append((path, seconds, judged, budget))
        if judged > budget:
            over.append(f"{path}: {_said(seconds, judged)} > {budget:.0f} s")
    wall, total = sum(times.values()), sum(row[2] for row in rows)
    if total > BOOK_BUDGET_S:
        over.append(f"whole book: {_said(wall, total)} > {BOOK_BUDGET_S:.0f} s")
    return rows, over


def _said(wall: float, judged: float) -> str:
    """ "58.2 s" or, when they differ, "58.2 s wall = 23.6 s on the page's machine"."""
    if abs(wall - judged) < 0.05:
        return f"{wall:.1f} s"
    return f"{wall:.1f} s wall = {judged:.1f} s on the page's machine"


def _check_machine() -> bool:
    """Whether to time the reference step (not with ``MMBOOK_MACHINE_CHECK=0``)."""
    return os.environ.get("MMBOOK_MACHINE_CHECK", "1") != "0"


def pytest_sessionstart(session):
    if _check_machine():  # the machine's state before the first notebook, and after the last
        _machine["before"] = machine_check.run()


def pytest_collection_modifyitems(items):
    for item in items:
        nb = _notebook_of(item)
        if nb is not None and str(nb) not in _budgets:
            budget = budget_of(nb)
            _budgets[item.nodeid.split("::")[0]] = (
                NOTEBOOK_MAX_BUDGET_S if budget is None else budget
            )


def _enforced() -> bool:
    """Whether an exceeded budget fails the run (not with ``MMBOOK_BUDGETS=report``)."""
    return os.environ.get("MMBOOK_BUDGETS", "enforce") != "report"


def _reference_gflops() -> float | None:
    ref = machine_check.reference()
    return None if ref is None else ref["matmul_gflops"]


def _speeds() -> dict[str, float]:
    if not _reference_clock():
        return {}
    return speeds(_order, _readings, _reference_gflops())


def _evaluate() -> list[tuple[str, float, float, float]]:
    """Rows (notebook, wall seconds, judged seconds, budget); fills ``_over``."""
    rows, over = judge(dict(_times), _budgets, _speeds())
    _over[:] = over
    return rows


def pytest_sessionfinish(session, exitstatus):
    if not _times:
        return
    if _reference_clock() and len(_readings) == len(_order):
        _readings.append(_reading())  # after the last notebook
    rows = _evaluate()
    if _check_machine():
        _machine["after"] = machine_check.run()
    kernel = session.config.getoption("nbval_kernel_name", None) or "notebook-kernel"
    out = Path(os.environ.get("MMBOOK_NBVAL_REPORT_DIR", "_build"))
    out.mkdir(exist_ok=True)
    report = {
        "kernel": kernel,
        "seconds": dict(_times),
        "budgets": _budgets,
        "total": sum(_times.values()),
        "clock": "reference" if _reference_clock() else "wall",
        "reference_gflops": _reference_gflops() if _reference_clock() else None,
        "readings_gflops": dict(zip(_order + ["after the last"], _readings, strict=False)),
        "speed": _speeds(),
        "judged_seconds": {path: judged for path, _, judged, _ in rows},
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
    rows = _evaluate()
    speed = _speeds()
    if speed:
        write(
            f"\nnotebook times on kernel {kernel}: wall clock, the machine's speed against the"
            f" statistics page's ({_reference_gflops() or 0:.0f} GFLOP/s, read before and after"
            " each notebook), and the time judged against the [budget]:"
        )
    else:
        write(f"\nnotebook times on kernel {kernel} (wall clock) [budget]:")
    for path, seconds, judged, budget in rows:
        flag = "  OVER BUDGET" if judged > budget else ""
        if speed:
            ratio = speed.get(path, 1.0)
            line = f"  {path:45s} {seconds:6.1f} s x {ratio:.2f} = {judged:5.1f} s"
            write(f"{line}  [{budget:.0f} s]{flag}")
        else:
            write(f"  {path:45s} {seconds:6.1f} s  [{budget:.0f} s]{flag}")
    wall, total = sum(_times.values()), sum(row[2] for row in rows)
    if speed:
        write(f"  {'total':45s} {wall:6.1f} s        {total:5.1f} s  [{BOOK_BUDGET_S:.0f} s]")
    else:
        write(f"  {'total':45s} {wall:6.1f} s  [{BOOK_BUDGET_S:.0f} s]")
    ref = machine_check.reference()
    for when in ("before", "after"):
        if when in _machine:
            write(machine_check.describe(_machine[when], f"{when} the notebooks", ref))
    for line in _over:
        write(f"BUDGET EXCEEDED: {line}" + ("" if _enforced() else " (reported only)"), red=True)

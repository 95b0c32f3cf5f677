"""pytest plugin for nbval runs: time each notebook and enforce its declared budget.

Each notebook declares ``metadata.mmbook.budget_s`` (at most 60 s); the whole book may take
at most 300 s (both limits from ``tools/budgets.py``). Time is measured from the kernel's start
to the last cell, as nbval runs it.
Load with ``-p tests.nbval_budget``. Writes ``_build/nbval-times-<kernel>.json``.

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


def _notebook_of(item) -> Path | None:
    path = Path(str(getattr(item, "path", item.fspath)))
    return path if path.suffix == ".ipynb" else None


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _times[path] += report.duration


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


def _evaluate() -> list[tuple[str, float, float]]:
    """Rows (notebook, seconds, budget); fills ``_over`` with every exceeded budget."""
    rows = []
    _over.clear()
    for path, seconds in sorted(_times.items()):
        budget = min(_budgets.get(path, NOTEBOOK_MAX_BUDGET_S), NOTEBOOK_MAX_BUDGET_S)
        rows.append((path, seconds, budget))
        if seconds > budget:
            _over.append(f"{path}: {seconds:.1f} s > {budget:.0f} s")
    total = sum(_times.values())
    if total > BOOK_BUDGET_S:
        _over.append(f"whole book: {total:.1f} s > {BOOK_BUDGET_S:.0f} s")
    return rows


def pytest_sessionfinish(session, exitstatus):
    if not _times:
        return
    _evaluate()
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
    write(f"\nnotebook times on kernel {kernel} [budget]:")
    for path, seconds, budget in _evaluate():
        flag = "  OVER BUDGET" if seconds > budget else ""
        write(f"  {path:45s} {seconds:6.1f} s  [{budget:.0f} s]{flag}")
    write(f"  {'total':45s} {sum(_times.values()):6.1f} s  [{BOOK_BUDGET_S:.0f} s]")
    ref = machine_check.reference()
    for when in ("before", "after"):
        if when in _machine:
            write(machine_check.describe(_machine[when], f"{when} the notebooks", ref))
    for line in _over:
        write(f"BUDGET EXCEEDED: {line}" + ("" if _enforced() else " (reported only)"), red=True)

"""The book's time budgets, declared here once.

Every notebook may take at most :data:`NOTEBOOK_MAX_BUDGET_S` seconds on the CPU kernel and the
whole book at most :data:`BOOK_BUDGET_S`, on the slower of the 2-core machines. Each notebook
declares its own budget, at most the maximum, in ``metadata.mmbook.budget_s`` (read by
:func:`budget_of`). ``tests/nbval_budget.py`` enforces them on every nbval run; ``make bench``
and the statistics page report against them; ``tests/test_notebooks.py`` checks each
notebook declares one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

BOOK_BUDGET_S = 300.0
NOTEBOOK_MAX_BUDGET_S = 60.0


def budget_of(path: Path) -> float | None:
    """The notebook's declared ``metadata.mmbook.budget_s`` (None when it declares none)."""
    meta = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})
    budget = meta.get("mmbook", {}).get("budget_s")
    return None if budget is None else float(budget)


#: The statistics page's run: ``make bench`` on the slower kind of 2-core machine, the machine
#: the budgets are set for. ``tests/nbval_budget.py`` judges the budgets in its seconds.
REFERENCE_REPORT = Path(__file__).resolve().parents[1] / "book" / "bench" / "report.json"

#: The fewest seconds of unchanged notebooks, on the page's machine, that calibrate a run's speed.
MIN_CALIBRATION_S = 60.0


def fingerprint(path: Path) -> str:
    """A hash of the notebook's code cells (what runs), to tell a notebook the statistics page
    timed from one changed since: prose and outputs do not count."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    return hashlib.sha256("\n\0".join(sources).encode()).hexdigest()[:16]


def reference(path: Path = REFERENCE_REPORT) -> dict | None:
    """The page's run as budgets need it: ``seconds`` per notebook under nbval on the CPU kernel,
    each notebook's ``fingerprints`` then, the ``matmul_gflops`` of its 2048x2048 product, and
    its ``cpu`` and ``date``. None when the report is missing or lacks any of them."""
    try:
        report = json.loads(Path(path).read_text())
        kernel = report["kernels"]["mmbook-cpu"]
        return {
            "seconds": dict(kernel["nbval"]["seconds_per_notebook"]),
            "fingerprints": dict(kernel["nbval"]["fingerprints"]),
            "matmul_gflops": kernel["matmul_peak"]["flops"] / 1e9,
            "cpu": report["machine"]["cpu"],
            "date": report["machine"]["date"],
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None

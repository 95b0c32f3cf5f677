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

#: Side-by-side ratios of notebooks changed since the page's run: ``make compare`` with the page's
#: commit as the baseline, written here by ``make calibrate``.
CALIBRATION = REFERENCE_REPORT.parent / "calibration.json"

#: The fewest seconds of unchanged notebooks, on the page's machine, that calibrate a run's speed.
MIN_CALIBRATION_S = 60.0


def fingerprint(path: Path) -> str:
    """A hash of the notebook's code cells (what runs), to tell a notebook the statistics page
    timed from one changed since: prose and outputs do not count."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    return hashlib.sha256("\n\0".join(sources).encode()).hexdigest()[:16]


def reference(path: Path = REFERENCE_REPORT, calibration: Path = CALIBRATION) -> dict | None:
    """The page's run as budgets need it: ``seconds`` per notebook under nbval on the CPU kernel,
    each notebook's ``fingerprints`` then, the ``matmul_gflops`` of its 2048x2048 product, its
    ``cpu`` and ``date``, and ``calibration``: for notebooks changed since, timed side by side
    with the page's copy (``make calibrate``), ``{"ratio", "baseline", "new"}`` (new / page's
    seconds, the largest of its rounds; and the two fingerprints). None when the report is
    missing or lacks any of them; ``calibration`` is empty when its file is missing."""
    try:
        report = json.loads(Path(path).read_text())
        kernel = report["kernels"]["mmbook-cpu"]
        ref = {
            "seconds": dict(kernel["nbval"]["seconds_per_notebook"]),
            "fingerprints": dict(kernel["nbval"]["fingerprints"]),
            "matmul_gflops": kernel["matmul_peak"]["flops"] / 1e9,
            "cpu": report["machine"]["cpu"],
            "date": report["machine"]["date"],
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ref["calibration"] = {}
    try:
        rows = json.loads(Path(calibration).read_text())["notebooks"]
        for nb, row in rows.items():
            if row.get("ratio") and all(row["fingerprints"].get(k) for k in ("baseline", "new")):
                ref["calibration"][nb] = {"ratio": _slowest_ratio(row), **row["fingerprints"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        ref["calibration"] = {}
    return ref


def _slowest_ratio(row: dict) -> float:
    """The largest new / baseline ratio of the rounds of a ``make compare`` row (each round times
    the two copies back to back), or its median ratio when the rounds are not recorded: a round
    can catch one copy in a slow spell, and the budgets should not profit from it."""
    runs = row.get("runs") or {}
    pairs = list(zip(runs.get("new") or [], runs.get("baseline") or [], strict=False))
    ratios = [new / old for new, old in pairs if old > 0]
    return max(ratios) if ratios else float(row["ratio"])


def page_seconds(ref: dict, path: str, now: str | None) -> float | None:
    """What notebook ``path``, whose code has fingerprint ``now``, would take on the page's machine:
    its seconds there when unchanged; those times its side-by-side ratio when ``ref``'s
    calibration timed this very code against the page's copy; else None."""
    if path not in ref["seconds"] or now is None:
        return None
    then = ref["fingerprints"].get(path)
    if now == then:
        return ref["seconds"][path]
    cal = ref.get("calibration", {}).get(path)
    if cal and cal["baseline"] == then and cal["new"] == now:
        return ref["seconds"][path] * cal["ratio"]
    return None

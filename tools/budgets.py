"""The book's time budgets, declared here once.

Every notebook may take at most :data:`NOTEBOOK_MAX_BUDGET_S` seconds on the CPU kernel and the
whole book at most :data:`BOOK_BUDGET_S`, on the slower of the 2-core machines. Each notebook
declares its own budget, at most the maximum, in ``metadata.mmbook.budget_s`` (read by
:func:`budget_of`). ``tests/nbval_budget.py`` enforces them on every nbval run; ``make bench``
and the statistics page report against them; ``tests/test_notebooks.py`` checks each
notebook declares one.
"""

from __future__ import annotations

import json
from pathlib import Path

BOOK_BUDGET_S = 300.0
NOTEBOOK_MAX_BUDGET_S = 60.0


def budget_of(path: Path) -> float | None:
    """The notebook's declared ``metadata.mmbook.budget_s`` (None when it declares none)."""
    meta = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})
    budget = meta.get("mmbook", {}).get("budget_s")
    return None if budget is None else float(budget)

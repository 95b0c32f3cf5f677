"""tools/budgets.py: the book's time budgets, declared once."""

import json

from tools import budgets


def test_budget_of_reads_notebook_metadata(tmp_path):
    nb = tmp_path / "a.ipynb"
    nb.write_text(json.dumps({"metadata": {"mmbook": {"budget_s": 25}}, "cells": []}))
    assert budgets.budget_of(nb) == 25.0
    nb.write_text(json.dumps({"metadata": {}, "cells": []}))
    assert budgets.budget_of(nb) is None


def test_limits_are_the_books_promise():
    assert (budgets.NOTEBOOK_MAX_BUDGET_S, budgets.BOOK_BUDGET_S) == (60.0, 300.0)

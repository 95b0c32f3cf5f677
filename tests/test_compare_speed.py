"""`make compare` (tools/compare_speed.py): the interleaving and the ratios, without a kernel."""

from pathlib import Path

from tools import compare_speed
from tools.budgets import fingerprint


def test_compare_interleaves_the_two_sides_and_reports_ratios(monkeypatch, tmp_path):
    baseline, new = tmp_path / "base", tmp_path / "new"
    for root in (baseline, new):
        (root / "chapters").mkdir(parents=True)
        (root / "chapters" / "a.ipynb").write_text('{"cells": []}')
    (new / "chapters" / "b.ipynb").write_text('{"cells": []}')  # a notebook only the new side has
    calls = []
    seconds = {"base": 10.0, "new": 8.0}

    def fake_time(path: Path, root: Path) -> float:
        side = "base" if root == baseline else "new"
        calls.append((path.name, side))
        return seconds[side]

    monkeypatch.setattr(compare_speed, "time_notebook", fake_time)
    new_only = "chapters/b.ipynb"
    report = compare_speed.compare(
        ["chapters/a.ipynb", new_only], baseline, 2, log=lambda s: None, new=new
    )
    a = report["notebooks"]["chapters/a.ipynb"]
    assert (a["baseline"], a["new"], a["ratio"]) == (10.0, 8.0, 0.8)
    assert report["notebooks"][new_only]["ratio"] is None
    assert a["runs"] == {"baseline": [10.0, 10.0], "new": [8.0, 8.0]}  # each round's seconds
    empty = fingerprint(baseline / "chapters" / "a.ipynb")  # which code each side timed
    assert a["fingerprints"] == {"baseline": empty, "new": empty}
    assert report["notebooks"][new_only]["fingerprints"]["baseline"] is None
    assert report["book"]["ratio"] == 0.8  # over the notebooks both sides have
    # each round runs both sides back to back, alternating which goes first
    a_calls = [side for name, side in calls if name == "a.ipynb"]
    assert a_calls == ["base", "new", "new", "base"]
    table = compare_speed.format_table(report, "abc123")
    assert "| a | 10.0 | 8.0 | 0.80 |" in table and "**0.80**" in table


def test_head_commit_names_the_working_tree():
    sha = compare_speed.head_commit().rstrip("+")  # "+": files differ from the commit
    assert len(sha) == 12 and all(c in "0123456789abcdef" for c in sha)


def _report(commit: str, date: str, rows: dict) -> dict:
    return {
        "baseline_commit": "base",
        "new_commit": commit,
        "machine": {"date": date},
        "notebooks": {
            nb: {"baseline": old, "new": new, "ratio": new / old} for nb, (old, new) in rows.items()
        },
    }


def test_merge_keeps_the_rows_not_timed_again():
    earlier = _report("c1", "day 1", {"a": (10.0, 20.0), "b": (10.0, 10.0)})
    now = _report("c2", "day 2", {"b": (10.0, 5.0)})
    merged = compare_speed.merge(earlier, now)
    assert merged["notebooks"]["a"]["ratio"] == 2.0  # kept, with when it was measured
    assert merged["notebooks"]["a"]["measured"] == {"date": "day 1", "new_commit": "c1"}
    assert merged["notebooks"]["b"]["ratio"] == 0.5  # replaced by this run's
    assert merged["notebooks"]["b"]["measured"] == {"date": "day 2", "new_commit": "c2"}
    assert merged["book"] == {"baseline": 20.0, "new": 25.0, "ratio": 1.25}
    assert merged["new_commit"] == "c2"


def test_merge_drops_rows_timed_against_another_baseline():
    earlier = dict(_report("c1", "day 1", {"a": (10.0, 20.0)}), baseline_commit="other")
    merged = compare_speed.merge(earlier, _report("c2", "day 2", {"b": (10.0, 5.0)}))
    assert list(merged["notebooks"]) == ["b"]
    assert list(compare_speed.merge(None, _report("c2", "d", {"b": (1.0, 1.0)}))["notebooks"]) == [
        "b"
    ]

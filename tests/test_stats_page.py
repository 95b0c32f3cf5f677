"""book/stats.md: it lists every chapter in _toc.yml and is what `make stats` makes from the
committed report book/bench/report.json (regenerating it gives the same text)."""

import json

from tests.test_bench import fake_report
from tools import stats_page

NESTED_TOC = """
format: jb-book
root: book/intro
parts:
  - caption: Chapters
    chapters:
      - file: chapters/a
        sections:
          - file: chapters/a_1
      - file: chapters/b
  - caption: Reference
    chapters:
      - file: book/references
"""


def test_toc_notebooks_in_reading_order():
    assert stats_page.toc_notebooks(NESTED_TOC) == [
        "chapters/a.ipynb",
        "chapters/a_1.ipynb",
        "chapters/b.ipynb",
    ]


def test_page_lists_every_notebook_in_the_toc():
    page = stats_page.PAGE.read_text(encoding="utf-8")
    notebooks = stats_page.toc_notebooks((stats_page.ROOT / "_toc.yml").read_text())
    assert len(notebooks) >= 9
    for notebook in notebooks:
        assert "{doc}`../" + notebook.removesuffix(".ipynb") + "`" in page, notebook


def test_page_is_generated_from_the_committed_report():
    report = json.loads(stats_page.REPORT.read_text(encoding="utf-8"))
    assert report["schema"] == 1 and "mmbook-cpu" in report["kernels"]
    assert stats_page.PAGE.read_text(encoding="utf-8") == stats_page.page_text(), (
        "book/stats.md is stale: run `make stats`"
    )


def rows_of(page):
    """The first table row of each first-column entry (the notebook table precedes the rest)."""
    rows = {}
    for line in page.splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0][2:], line)
    return rows


def test_render_rows_budgets_and_sections():
    notebooks = ["chapters/a.ipynb", "chapters/b.ipynb", "chapters/c.ipynb", "chapters/d.ipynb"]
    budgets = {"chapters/a.ipynb": 10.0, "chapters/b.ipynb": 10.0, "chapters/d.ipynb": 30.0}
    page = stats_page.render(fake_report(), notebooks, budgets)
    rows = rows_of(page)
    assert rows["{doc}`../chapters/a`"] == "| {doc}`../chapters/a` | 4.0 | 10 | 500 | yes |"
    assert rows["{doc}`../chapters/b`"] == "| {doc}`../chapters/b` | 12.5 | 10 | 900 | **no** |"
    assert rows["{doc}`../chapters/c`"].endswith("| - | - | - | failed |")
    assert rows["{doc}`../chapters/d`"] == "| {doc}`../chapters/d` | - | 30 | - | not measured |"
    assert (
        rows["**the notebooks measured**"] == "| **the notebooks measured** | 16.5 | 300 |  | yes |"
    )
    assert "```{note}\nProvisional" in page
    assert "Not measured on `mmbook-gpu`: no CUDA device." in page
    assert "**100 GFLOP/s**" in page
    assert "| `big` | 10 | 4.0 | 160 | 10 | 2.5 | 25% | 10 at 2,048 | 10% |" in page
    assert "Not measured in this report (--skip book)." in page
    assert (
        "| each notebook in 60 s or less | slowest chapters/b.ipynb: 12.5 s (1 failed) | **no** |"
        in page
    )
    assert "matmul peak or more |" not in page  # the retired target is no row
    assert "was retired" in page


def test_render_runs_without_a_ceiling():
    report = fake_report()
    run = report["kernels"]["mmbook-cpu"]["heaviest_training"][0]
    for key in ("ceiling_flops_per_s", "ceiling_batch"):
        del run[key]
    run["ceiling_ratio"] = run["ceiling_peak_ratio"] = None
    page = stats_page.render(report, ["chapters/a.ipynb"], {})
    assert "| 2.5 | - | - | - |" in page


def test_render_complete_report():
    report = fake_report()
    report.update(complete=True, skipped=[])
    report["kernels"]["mmbook-cpu"]["notebooks"].pop()  # c failed; keep a and b
    report["kernels"]["mmbook-cpu"]["notebooks"][0]["peak_gpu_mb"] = 123.4
    report["book"] = {"scratch_s": 61.24, "rebuild_s": 9.96, "returncode": 0}
    page = stats_page.render(report, ["chapters/a.ipynb", "chapters/b.ipynb"], {})
    assert "{note}" not in page
    assert rows_of(page)["{doc}`../chapters/a`"].endswith("| 4.0 | - | 500 (GPU 123) | - |")
    assert rows_of(page)["**whole book**"].startswith("| **whole book** | 16.5 | 300 |")
    assert "`make book` took 61.2 s from scratch and 10.0 s again with nothing changed." in page


def fake_compare():
    """A `make compare` report over two notebooks, one of which only the new side has."""
    machine = fake_report()["machine"]
    return {
        "rounds": 1,
        "baseline": "e8ff3fd",
        "baseline_commit": "e8ff3fd8d7d4",
        "new_commit": "5154cde0aaaa+",
        "machine": machine,
        "notebooks": {
            "chapters/b.ipynb": {"baseline": None, "new": 3.0, "ratio": None},
            "chapters/a.ipynb": {"baseline": 10.0, "new": 7.0, "ratio": 0.7},
        },
        "book": {"baseline": 10.0, "new": 10.0, "ratio": 0.7},
    }


def test_render_side_by_side_section():
    notebooks = ["chapters/a.ipynb", "chapters/b.ipynb"]
    without = stats_page.render(fake_report(), notebooks, {})
    assert "Side by side" not in without
    page = stats_page.render(fake_report(), notebooks, {}, fake_compare())
    assert "## Side by side with an earlier commit" in page
    assert "`make compare BASELINE=e8ff3fd` (commit `e8ff3fd8d7d4` against `5154cde0aaaa+`)" in page
    lines = page.splitlines()
    a = lines.index("| {doc}`../chapters/a` | 10.0 | 7.0 | 0.70 |")
    b = lines.index("| {doc}`../chapters/b` | - | 3.0 | - |")
    assert a < b  # in the table of contents' order
    assert "| **the whole book** | 10.0 | 10.0 | **0.70** |" in page
    assert "this run gives 0.70: met." in page
    slower = fake_compare()
    slower["book"]["ratio"] = 0.93
    assert "this run gives 0.93: **not met**." in stats_page.render(
        fake_report(), notebooks, {}, slower
    )
    assert page.index("Side by side") < page.index("## Building the book")


def test_page_text_reads_the_compare_report_when_there_is_one(tmp_path):
    report, compare = tmp_path / "report.json", tmp_path / "compare.json"
    report.write_text(json.dumps(fake_report()))
    assert "Side by side" not in stats_page.page_text(report, compare)
    compare.write_text(json.dumps(fake_compare()))
    assert "Side by side" in stats_page.page_text(report, compare)

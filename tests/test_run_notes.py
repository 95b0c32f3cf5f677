"""tools/run_notes.py: run-notes boxes are found in the pages, run after the page, and the stored
results still belong to the code each box shows."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from mmlib.book.results import EARLIER_RUNS_FILE
from tools import run_notes

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

BOX = """Some prose.

:::{admonition} Run notes: a longer run
:class: dropdown
```python
# run notes: t.longer
results = {"doubled": 2 * x}
```
:::
"""


def _notebook(*markdown: str, code: str = "x = 0.25"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nb.cells += [nbformat.v4.new_markdown_cell(m) for m in markdown]
    return nb


def test_a_block_is_found_with_its_box_title_and_code():
    blocks = run_notes.run_notes_blocks(_notebook(BOX))
    assert blocks == {
        "t.longer": ("a longer run", '# run notes: t.longer\nresults = {"doubled": 2 * x}\n', 1)
    }


def test_a_python_block_without_the_name_line_is_not_a_run_notes_block():
    assert run_notes.run_notes_blocks(_notebook("```python\nprint(1)\n```")) == {}


@pytest.mark.parametrize(
    "markdown, match",
    [
        ((BOX, BOX), "two run-notes blocks"),
        (("```python\n# run notes: t.bare\nresults = {}\n```",), "not in a 'Run notes"),
    ],
)
def test_a_duplicate_or_boxless_block_is_refused(markdown, match):
    with pytest.raises(ValueError, match=match):
        run_notes.run_notes_blocks(_notebook(*markdown))


def test_the_block_runs_after_the_cells_above_its_box_under_each_seed(tmp_path):
    """A real kernel: the cells above the box, then the block; MMBOOK_SEED reaches the kernel.
    The cell below the box (which would read the stored results) is not run."""
    code = "import os\nx = 0.25 + int(os.environ['MMBOOK_SEED'])"
    path = tmp_path / "page.ipynb"
    nb = _notebook(BOX, code=code)
    nb.cells.append(nbformat.v4.new_code_cell("raise KeyError('no stored run yet')"))
    nbformat.write(nb, path)
    _, block, cell = run_notes.run_notes_blocks(nb)["t.longer"]
    assert run_notes.run(nb, path, block, cell, seed=3, kernel="python3") == {"doubled": 6.5}


def test_every_stored_run_notes_result_matches_the_code_its_box_shows():
    """Editing a box's code without running it again (make run-notes) fails here."""
    stored = json.loads(EARLIER_RUNS_FILE.read_text())
    blocks = {}
    for path in CHAPTERS:
        for name, (_, code, _) in run_notes.run_notes_blocks(nbformat.read(path, 4)).items():
            blocks[name] = code
    runs = {name: entry for name, entry in stored.items() if "code_sha256" in entry}
    assert runs, "no stored run notes"
    for name, entry in runs.items():
        assert name in blocks, f"{name} is stored but no page has its run-notes block"
        assert entry["code_sha256"] == run_notes.code_sha(blocks[name]), (
            f"{name}: the box's code changed since it was run: {entry['reproduce']}"
        )
        assert entry["reproduce"].startswith("make run-notes NB=chapters/")
        assert 0 in entry["seeds"] and len(entry["seeds"]) >= 5
        assert all(len(v) == len(entry["seeds"]) for v in entry["values"].values())

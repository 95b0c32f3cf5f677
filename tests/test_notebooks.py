"""The book's rules, checked on every notebook in chapters/ (see CONTRIBUTING.md)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.toc import toc_pages

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
IDS = [nb.stem for nb in NOTEBOOKS]
MACHINE_PATH = re.compile(r"(/root/|/work/|/tmp/|/home/[^/\s]+/|/Users/|site-packages|\.venv/)")
MAX_BUDGET_S = 60


def read(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def toc_files() -> list[str]:
    return toc_pages()


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_one_clean_top_to_bottom_run(path):
    cells = [c for c in code_cells(read(path)) if c.source.strip()]
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"execution counts {counts}: re-run it"
    for i, cell in enumerate(cells):
        # a failure the page shows on purpose is caught in the cell and printed, so the notebook
        # runs to its end under "Run All" (Jupyter stops at the first raising cell)
        assert "raises-exception" not in tags(cell), f"cell {i}: catch the error instead"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"cell {i} stored an error: {errors[0].get('ename')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_kernelspec_is_the_cpu_kernel(path):
    assert read(path).metadata.kernelspec.name == "mmbook-cpu"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_few_ignored_outputs_and_no_skips(path):
    cells = code_cells(read(path))
    ignored = [c for c in cells if "nbval-ignore-output" in tags(c) or "NBVAL_IGNORE" in c.source]
    assert len(ignored) <= 0.10 * len(cells), f"{len(ignored)} of {len(cells)} cells ignored"
    for cell in cells:
        assert "nbval-skip" not in tags(cell) and "NBVAL_SKIP" not in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_machine_paths_and_small(path):
    assert path.stat().st_size < 3_000_000
    for i, cell in enumerate(code_cells(read(path))):
        for out in cell.outputs:
            text = json.dumps(
                {k: v for k, v in out.items() if k != "data"}
                | {
                    "data": {
                        k: v for k, v in out.get("data", {}).items() if not k.startswith("image/")
                    }
                }
            )
            found = MACHINE_PATH.search(text)
            assert not found, f"cell {i} prints a machine path: {found.group(0)}"


def test_toc_and_chapters_agree():
    listed = toc_files()
    for entry in listed:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".ipynb", ".md")), entry
    for path in NOTEBOOKS:
        assert f"chapters/{path.stem}" in listed, f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_metadata_is_clean(path):
    nbstripout = shutil.which("nbstripout", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [nbstripout, "--keep-output", "--keep-count", "--verify", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{path.name} has metadata to strip: {result.stdout}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_has_alt_text(path):
    """Screen readers and the site's accessibility check need a description of each figure;
    MyST-NB takes it from the cell metadata ``mystnb: {image: {alt: ...}}``."""
    missing = []
    for number, cell in enumerate(code_cells(read(path)), start=1):
        if any("image/png" in output.get("data", {}) for output in cell.outputs):
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            if len(alt.split()) < 4:
                missing.append(f"code cell {number}")
    assert not missing, f"{path.name}: figures without alt text (4+ words): {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_budget_is_declared(path):
    """Each notebook declares its budget; tests/nbval_budget.py enforces it (and the book's
    300 s total) on every nbval run, from measured times."""
    budget = read(path).metadata.get("mmbook", {}).get("budget_s")
    assert isinstance(budget, (int, float)) and 0 < budget <= MAX_BUDGET_S, path.name


def test_ruff_lints_and_formats_code_and_notebooks():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    targets = ["mmlib", "tests", "chapters"]
    check = subprocess.run([ruff, "check", *targets], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [ruff, "format", "--check", *targets], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout


def results_table(nb, header: str) -> dict[str, list[tuple[str, object]]]:
    """The rows of the stored table whose first line starts with ``header``
    (:func:`mmlib.results.show_table`): ``{row name: [(number as printed, what a re-run may
    print instead), ...]}``, from the output's ``mmbook.numbers`` metadata."""
    from mmlib.results import NUMBER

    for cell in code_cells(nb):
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/plain", "")
            if not text.startswith(header):
                continue
            specs = iter(out.get("metadata", {}).get("mmbook", {}).get("numbers", []))
            rows = {}
            for line in text.splitlines()[1:]:
                numbers = [(m.group(0), next(specs, None)) for m in NUMBER.finditer(line)]
                first = NUMBER.search(line)
                rows[line[: first.start() if first else len(line)].strip()] = numbers
            return rows
    return {}


def quoted_within(quoted: str, printed: str, spec) -> bool:
    """Whether a number another chapter quotes is one this table's re-run may print."""
    from mmlib.results import parse_number

    if quoted == printed or spec == "any":
        return True
    return isinstance(spec, list) and spec[0] <= parse_number(quoted) <= spec[1]


def quotes_of_chapter_2(chapter_8_source: str, chapter_2_table: dict) -> list[str]:
    """What chapter 8 quotes from chapter 2's results table and chapter 2 would not print:
    parameter counts must match, accuracies lie within the range chapter 2's stored table
    declares for them (their seed band, widened by its margin)."""
    table = re.findall(
        r"^\| (early fusion|late fusion|joint)[^|]* \| ([\d,]+) \| ([\d.]+) \| ([\d.]+) \|$",
        chapter_8_source,
        flags=re.MULTILINE,
    )
    if [row[0] for row in table] != ["early fusion", "late fusion", "joint"]:
        return [f"chapter 8's fusion table: {table}"]
    wrong = []
    for name, parameters, accuracy, hard in table:
        row = next((v for k, v in chapter_2_table.items() if k.startswith(name)), None)
        if row is None or len(row) != 4:
            wrong.append(f"{name}: no such row in chapter 2's results table")
            continue
        quoted = [parameters, None, accuracy, hard]
        if not all(
            q is None or quoted_within(q, printed, spec)
            for q, (printed, spec) in zip(quoted, row, strict=True)
        ):
            wrong.append(f"{name} {parameters} {accuracy} {hard} (chapter 2: {row})")
    _, _, accuracy, hard = table[-1]
    if f"({accuracy} test, {hard} hard)" not in chapter_8_source:
        wrong.append(f"the key takeaways' joint space ({accuracy} test, {hard} hard)")
    return wrong


def test_chapter_8_quotes_chapter_2s_stored_results():
    """Chapter 8's fusion table and takeaways repeat chapter 2's results table: regenerating
    chapter 2 must not leave chapter 8 quoting numbers that chapter 2's run would not give."""
    source = "\n".join(c.source for c in read(ROOT / "chapters/08_summary.ipynb").cells)
    table = results_table(read(ROOT / "chapters/02_core_concepts.ipynb"), "model ")
    assert quotes_of_chapter_2(source, table) == []

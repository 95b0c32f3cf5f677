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

from tools.budgets import NOTEBOOK_MAX_BUDGET_S, budget_of
from tools.toc import toc_pages

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
IDS = [nb.stem for nb in NOTEBOOKS]
MACHINE_PATH = re.compile(r"(/root/|/work/|/tmp/|/home/[^/\s]+/|/Users/|site-packages|\.venv/)")


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_stored_figure_has_text_below_8_points(path):
    """mmlib.book.plotting reports such a figure on stderr when it is drawn; nbval compares
    stderr, so a stored report would pass validation: it must not be stored at all."""
    for i, cell in enumerate(code_cells(read(path))):
        for out in cell.outputs:
            if out.output_type == "stream" and "figure text below" in out.get("text", ""):
                pytest.fail(f"cell {i}: {out.text.strip()[:200]}")


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
    budget = budget_of(path)
    assert budget is not None and 0 < budget <= NOTEBOOK_MAX_BUDGET_S, path.name


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
    (:func:`mmlib.book.results.show_table`): ``{row name: [(number as printed, what a re-run may
    print instead), ...]}``, from the output's ``mmbook.numbers`` metadata."""
    from mmlib.book.results import NUMBER

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


CHAPTER_2_ROWS = {
    "early fusion": "early_fusion",
    "late fusion": "late_fusion",
    "joint space": "joint_space",
}


def quotes_of_chapter_2(chapter_8_table: dict, chapter_2_table: dict, bands: dict) -> list[str]:
    """What chapter 8's stored table of chapter 2's results shows and should not.

    ``chapter_8_table`` and ``chapter_2_table`` are :func:`results_table` rows; ``bands`` is
    ``{name: Band}`` of the seed-band file. Chapter 8 must show chapter 2's parameter counts
    and the current bands ``ch2.<model>_test`` / ``_hard`` (lowest and highest value), and
    chapter 2's stored run must lie in the bands chapter 8 quotes (their accepted range).
    """
    from mmlib.book.results import parse_number

    wrong = []
    for row, short in CHAPTER_2_ROWS.items():
        ours, theirs = chapter_8_table.get(row), chapter_2_table.get(row)
        if ours is None or theirs is None or len(ours) != 5 or len(theirs) != 4:
            wrong.append(f"{row}: chapter 8 {ours}, chapter 2 {theirs}")
            continue
        if ours[0][0] != theirs[0][0]:
            wrong.append(f"{row}: {ours[0][0]} parameters, chapter 2 has {theirs[0][0]}")
        for k, kind in enumerate(("test", "hard")):
            band = bands.get(f"ch2.{short}_{kind}")
            shown = (ours[1 + 2 * k][0], ours[2 + 2 * k][0])
            if band is None or shown != (f"{band.lo:.3f}", f"{band.hi:.3f}"):
                wrong.append(f"{row} {kind}: chapter 8 shows {shown}, the band file {band}")
            elif not band.accepts(parse_number(theirs[2 + k][0])):
                wrong.append(f"{row} {kind}: chapter 2's run {theirs[2 + k][0]} is off {band}")
    return wrong


def chapter_2_bands() -> dict:
    from mmlib.book.results import seed_band

    names = [f"ch2.{s}_{k}" for s in CHAPTER_2_ROWS.values() for k in ("test", "hard")]
    return {name: seed_band(name) for name in names}


def test_chapter_8_shows_chapter_2s_bands_and_parameters():
    """Chapter 8's table of chapter 2's results is printed by code from the seed-band file
    (``seed_band("ch2...")``): re-measuring chapter 2's bands, or changing its models, must not
    leave chapter 8's stored table showing other numbers."""
    ours = results_table(read(ROOT / "chapters/08_summary.ipynb"), "chapter 2, ")
    theirs = results_table(read(ROOT / "chapters/02_core_concepts.ipynb"), "model ")
    assert quotes_of_chapter_2(ours, theirs, chapter_2_bands()) == []


def test_chapter_8_check_fails_on_stale_numbers():
    """The check above can fail: a stale band, a wrong parameter count, an off-band run."""
    ours = results_table(read(ROOT / "chapters/08_summary.ipynb"), "chapter 2, ")
    theirs = results_table(read(ROOT / "chapters/02_core_concepts.ipynb"), "model ")
    bands = chapter_2_bands()
    stale = dict(ours, **{"late fusion": [("1", None)] + ours["late fusion"][1:]})
    assert any("parameters" in w for w in quotes_of_chapter_2(stale, theirs, bands))
    moved = dict(
        bands, **{"ch2.joint_space_hard": type(bands["ch2.joint_space_hard"])(0.1, 0.2, 5)}
    )
    assert any("joint space hard" in w for w in quotes_of_chapter_2(ours, theirs, moved))
    off = dict(
        theirs,
        **{
            "early fusion": theirs["early fusion"][:2]
            + [("0.100", None)]
            + theirs["early fusion"][3:]
        },
    )
    assert any("off" in w for w in quotes_of_chapter_2(ours, off, bands))

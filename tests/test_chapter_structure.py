"""Every chapter has the same frame (CONTRIBUTING.md, "Every chapter"): learning goals first, a
figure, key takeaways at the end, then exercises whose solutions sit behind a toggle, one of them
checked by an assertion. tests/test_notebooks.py checks how notebooks are run and stored; this
file checks what the reader sees."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tools.toc import toc_pages

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}[ \t]*(?P<argument>.*)$")


def toc_chapters() -> list[Path]:
    """The notebooks listed in _toc.yml, in reading order."""
    return [ROOT / f"{f}.ipynb" for f in toc_pages() if (ROOT / f"{f}.ipynb").exists()]


CHAPTERS = toc_chapters()
IDS = [p.stem for p in CHAPTERS]


@dataclass
class Directive:
    name: str
    argument: str
    options: dict[str, str]
    cell: int  # index of the notebook cell that holds it


def directives(nb) -> list[Directive]:
    """Every MyST directive (``` or ::: fences) opened in the notebook's markdown cells."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            match = FENCE.match(line.strip())
            if not match:
                continue
            options = {}
            for option in lines[i + 1 :]:
                key = re.match(r"^:([\w-]+):\s*(.*)$", option.strip())
                if not key:
                    break
                options[key.group(1)] = key.group(2)
            found.append(Directive(match["name"], match["argument"].strip(), options, index))
    return found


def exercises_cell(nb) -> int:
    """Index of the markdown cell with the `## Exercises` heading (-1 if none)."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and re.search(r"^## Exercises\s*$", cell.source, re.M):
            return index
    return -1


@pytest.fixture(scope="module", params=CHAPTERS, ids=IDS)
def chapter(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_every_chapter_in_the_toc_is_checked():
    assert len(CHAPTERS) >= 9


def test_opens_with_learning_goals(chapter):
    path, nb = chapter
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell is not markdown"
    assert re.search(r"^# \S", first.source, re.M), f"{path.name}: no `# title` in the first cell"
    goals = [d for d in directives(nb) if d.cell == 0 and d.name == "admonition"]
    assert any(d.argument == "Learning goals" and d.options.get("class") == "tip" for d in goals), (
        f"{path.name}: the first cell has no ```{{admonition}} Learning goals box (:class: tip)"
    )


def test_closes_with_key_takeaways_before_the_exercises(chapter):
    path, nb = chapter
    boxes = [d for d in directives(nb) if d.name == "admonition" and d.argument == "Key takeaways"]
    assert len(boxes) == 1, f"{path.name}: {len(boxes)} Key takeaways boxes, expected 1"
    box = boxes[0]
    assert box.options.get("class") == "important", (
        f"{path.name}: Key takeaways needs :class: important"
    )
    headings = [
        (index, heading)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for heading in re.findall(r"^## (.+)$", cell.source, re.M)
    ]
    later = [h for i, h in headings if i > box.cell and h.strip() != "Exercises"]
    assert not later, f"{path.name}: sections after the Key takeaways box: {later}"
    assert exercises_cell(nb) >= box.cell, f"{path.name}: Key takeaways must come before Exercises"


def test_exercises_have_toggled_solutions(chapter):
    path, nb = chapter
    start = exercises_cell(nb)
    assert start >= 0, f"{path.name}: no `## Exercises` section"
    after = [d for d in directives(nb) if d.cell >= start]
    exercises = [d for d in after if d.name == "exercise"]
    solutions = [d for d in after if d.name in ("solution", "solution-start")]
    assert exercises, f"{path.name}: no ```{{exercise}} directive under ## Exercises"
    assert solutions, f"{path.name}: no ```{{solution}} or ```{{solution-start}} directive"
    labels = {d.options.get("label") for d in exercises}
    assert None not in labels, f"{path.name}: every exercise needs a :label:"
    for solution in solutions:
        assert solution.argument in labels, (
            f"{path.name}: solution for {solution.argument!r}, which is no exercise's label"
        )
        assert solution.options.get("class") == "dropdown", (
            f"{path.name}: the solution of {solution.argument} is not behind a toggle "
            "(:class: dropdown)"
        )
    unsolved = labels - {s.argument for s in solutions}
    assert not unsolved, f"{path.name}: exercises without a solution: {sorted(unsolved)}"


def test_has_a_figure(chapter):
    path, nb = chapter
    assert any(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ), f"{path.name}: no figure (no image/png output); run `make notebooks NB={path.name}`?"


def test_a_solution_is_checked_by_an_assertion(chapter):
    """Code cells between a `solution-start` and its `solution-end`: one must `assert`."""
    path, nb = chapter
    inside, asserted = False, False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if re.search(r"\{solution-start\}", cell.source):
                inside = True
            if re.search(r"\{solution-end\}", cell.source):
                inside = False
        elif inside and re.search(r"^\s*assert\b", cell.source, re.M):
            asserted = True
    assert asserted, (
        f"{path.name}: no solution code cell (between solution-start and solution-end) asserts"
    )

"""Every result number a reader reads comes from the run (issue 15; mmlib.book.results).

- The prose types no result: a decimal or a percentage in a chapter's markdown must be inserted
  with ``{eval}``, sit in a sentence that cites its source, be a setting that the page's code
  uses, or be one of the few constants allowed below (each with its reason).
- Every ``{eval}`` role has its value stored by ``make notebooks``; no stale values are kept.
- Result cells print numbers: no printed line ends in a bare ``True`` or ``False``.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

from tools.execute_notebook import EVAL_ROLE, eval_expressions

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))

# Chapters 6-9 follow in issue 16; until then they are listed here and not checked.
NOT_YET: set[str] = set()
CHECKED = [p for p in NOTEBOOKS if p.stem not in NOT_YET]

# Constants a page may type, with the reason. Keep this to a handful.
ALLOWED = {
    "0.25": "the largest slope of the logistic sigmoid, sigma'(0) = 1/4 (a fact of calculus)",
    "0.5": "chance for a yes/no answer (a definition, not a measurement)",
}

DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)|(?<![\w.])\d+(?:\.\d+)?\s?%")
VERSION = re.compile(r"(Python|torch|CUDA|PyTorch|version|cuDNN|matplotlib|v)\s*$", re.I)
SECTION_WORDS = re.compile(r"section|chapter|\{doc\}|§|article", re.I)
CITATION = re.compile(r"\{cite(:\w+)?\}")
# "(1.2)", "(3.1, 3.2)": the article's section numbers in parentheses
SECTION_REFS = re.compile(r"\((?:[1-9]\.[1-9](?:,\s*|\s+and\s+)?)+\)")


def _strip(markdown: str) -> str:
    """The prose a reader reads as typed: without {eval} roles, code, links and labels."""
    text = EVAL_ROLE.sub(" ", markdown)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)  # fenced code (not directives' bodies)
    text = re.sub(r"`[^`\n]*`", " ", text)  # inline code, roles' targets
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"^\s*:\w[\w-]*:.*$", " ", text, flags=re.M)  # directive options
    text = re.sub(r"^#+ .*$", " ", text, flags=re.M)  # headings carry the article's numbering
    return SECTION_REFS.sub(" ", text)


FENCE = re.compile(r"^(`{3,}|:{3,})(\{[^}]+\})?(.*)$")


def _directive_bodies(markdown: str) -> str:
    """Directive bodies (admonitions, exercises) are prose too: keep them, drop their fences.

    Code blocks keep their fences, so that :func:`_strip` removes them whole, also where a
    directive holds several of them: each fence is matched with its own opener.
    """
    lines, open_ = [], []  # open_: (marker, is_directive) of the fences opened and not closed
    for line in markdown.split("\n"):
        m = FENCE.match(line.strip())
        if not m:
            lines.append(line)
            continue
        marker, directive, rest = m.groups()
        in_code = bool(open_) and not open_[-1][1]
        closes = not directive and not rest.strip() and open_ and marker[0] == open_[-1][0][0]
        if closes and len(marker) >= len(open_[-1][0]):
            lines.append(" " if open_.pop()[1] else line)
        elif in_code:
            lines.append(line)  # a line inside a code block that only looks like a fence
        else:
            open_.append((marker, bool(directive)))
            lines.append(" " if directive else line)
    return "\n".join(lines)


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(*])|\n\s*\n|\n\s*[-|]", text)


def code_literals(nb) -> set[float]:
    """Numbers written in the page's code: its settings (learning rates, steps, thresholds)."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            for tok in tokenize.generate_tokens(io.StringIO(cell.source).readline):
                if tok.type == tokenize.NUMBER:
                    try:
                        found.add(float(tok.string.replace("_", "")))
                    except ValueError:
                        pass
        except (tokenize.TokenError, IndentationError):
            pass
    return found


def typed_numbers(nb) -> list[tuple[int, str, str]]:
    """``(cell, number, sentence)`` for every typed decimal or percentage that is not allowed."""
    literals = code_literals(nb)
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for sentence in _sentences(_strip(_directive_bodies(cell.source))):
            if CITATION.search(sentence):
                continue
            for m in DECIMAL.finditer(sentence):
                number = m.group(0)
                before = sentence[: m.start()]
                if number in ALLOWED or VERSION.search(before):
                    continue
                value = float(number.rstrip("% "))
                if number.rstrip().endswith("%") and (value / 100 in literals or value in literals):
                    continue
                if not number.endswith("%") and value in literals:
                    continue
                if re.fullmatch(r"[1-9]\.[1-9]", number) and SECTION_WORDS.search(sentence):
                    continue  # a section number: "section 5.2", "{doc}`06_1_dialogue` (6.1)"
                bad.append((i, number, " ".join(sentence.split())[:160]))
    return bad


@pytest.mark.parametrize("path", CHECKED, ids=[p.stem for p in CHECKED])
def test_prose_types_no_result(path):
    bad = typed_numbers(nbformat.read(path, as_version=4))
    listing = "\n".join(f"  cell {i}: {n!r} in: {s}" for i, n, s in bad)
    assert not bad, f"typed numbers (insert them with {{eval}} or cite their source):\n{listing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_eval_role_has_its_stored_value(path):
    nb = nbformat.read(path, as_version=4)
    values: dict[str, str] = {}
    for i, cell in enumerate(nb.cells):
        stored = cell.get("metadata", {}).get("user_expressions", [])
        wanted = eval_expressions(cell.source) if cell.cell_type == "markdown" else []
        assert [e["expression"] for e in stored] == wanted, (
            f"cell {i}: stored {{eval}} values do not match its roles: run `make notebooks`"
        )
        for entry in stored:
            assert entry["result"]["status"] == "ok", f"cell {i}: {entry['expression']} failed"
            text = "".join(entry["result"]["data"].get("text/plain", ""))
            previous = values.setdefault(entry["expression"], text)
            assert previous == text, (
                f"cell {i}: {{eval}}`{entry['expression']}` shows {text!r} here and "
                f"{previous!r} earlier; give the two values two names"
            )


@pytest.mark.parametrize("path", CHECKED, ids=[p.stem for p in CHECKED])
def test_results_print_numbers_not_booleans(path):
    nb = nbformat.read(path, as_version=4)
    bare = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip().startswith("show_source("):
            continue  # a listing of mmlib's code, not a result (its lines may end in False)
        for out in cell.get("outputs", []):
            text = out.get("text", "") or "".join(out.get("data", {}).get("text/plain", ""))
            text = "".join(text) if isinstance(text, list) else text
            bare += [(i, line) for line in text.splitlines() if re.search(r"\b(True|False)$", line)]
    assert not bare, "print the number, not a bare boolean:\n" + "\n".join(
        f"  cell {i}: {line}" for i, line in bare
    )


def test_the_check_finds_a_typed_result():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("lr = 3e-3\nsteps = 250"),
        nbformat.v4.new_markdown_cell(
            "At a learning rate of 0.003 the model reaches 0.883 and 91% of the hard pairs. "
            "GPT-3 has 175.0 billion parameters {cite}`brown2020gpt3`. Python 3.11 runs it; "
            "section 5.2 shows why (5.3). It scored {eval}`acc`, against chance 0.5."
        ),
    ]
    assert [n for _, n, _ in typed_numbers(nb)] == ["0.883", "91%"]


def test_code_blocks_in_a_directive_are_code_and_the_prose_between_them_is_prose():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            ":::{admonition} Run notes\n:class: dropdown\n"
            "```python\nprint(0.123)\n```\n\nIt printed\n\n```text\n0.456\n```\n\n"
            "and between the blocks the model reached 0.789.\n\n"
            "```text\n0.321\n```\n:::\n\n"
            "````{exercise}\nA question with a block:\n```python\nx = 0.654\n```\n"
            "Its answer is 0.987.\n````"
        ),
    ]
    assert [n for _, n, _ in typed_numbers(nb)] == ["0.789", "0.987"]

"""pytest plugin for nbval runs: compare printed numbers within their declared tolerance.

nbval compares a re-run's outputs with the stored ones as text. A number that comes out of
training differs a little on another CPU or on the GPU kernel, so, before nbval compares, this
plugin puts the stored text back wherever the re-run's numbers are within what was declared:

- per number, in an output's metadata (``mmbook.numbers``, one entry per number in its text,
  written by :mod:`mmlib.book.results`): ``null`` (the same text), ``"any"`` (machine-dependent,
  such as seconds) or ``[lo, hi]`` (a seed band widened by its margin, or value ± tol);
- per cell, in the cell's metadata (``mmbook.tolerance``: ``{"abs": a}`` and/or ``{"rel": r}``),
  for printed numbers of that cell whose output declares nothing.

Everything else (words, counts, shapes, how many numbers there are) must match exactly, and a
number outside its range fails the cell with a line that says which number, where and why.

It also checks the prose: every ``{eval}`` expression stored in a markdown cell
(``metadata.user_expressions``, written by ``tools/execute_notebook.py``) is evaluated again
right after the code cell before it, and compared in the same way.

Load with ``-p tests.nbval_numbers``.
"""

from __future__ import annotations

import copy
from queue import Empty

from mmlib.book.results import NUMBER, parse_number

try:  # nbval is a test dependency; without it the plugin has nothing to patch
    from nbval.plugin import IPyNbCell
except ImportError:  # pragma: no cover
    IPyNbCell = None


def number_within(ref: str, new: str, spec, cell_tolerance: dict | None) -> str | None:
    """``None`` if the re-run's number ``new`` may stand for the stored ``ref``; else why not."""
    if ref == new or spec == "any":
        return None
    value, stored = parse_number(new), parse_number(ref)
    if isinstance(spec, list):
        lo, hi = spec
        if lo <= value <= hi:
            return None
        return f"{new} is outside the declared range [{lo:.4g}, {hi:.4g}] (stored: {ref})"
    if cell_tolerance:
        allowed = cell_tolerance.get("abs", 0.0) + cell_tolerance.get("rel", 0.0) * abs(stored)
        if abs(value - stored) <= allowed:
            return None
        return (
            f"{new} differs from the stored {ref} by more than the cell's tolerance {allowed:.4g}"
        )
    return f"{new} differs from the stored {ref}, and no tolerance is declared for it"


def reconcile_text(
    ref: str, new: str, specs: list | None, cell_tolerance: dict | None
) -> tuple[str, list[str]]:
    """The text to compare in place of ``new``, and why numbers could not be reconciled.

    Words must match exactly (runs of spaces may differ, as table columns widen); numbers
    within their range are replaced by the stored ones. The result equals ``ref`` exactly when
    everything is within tolerance.
    """
    ref_numbers, new_numbers = NUMBER.findall(ref), NUMBER.findall(new)
    ref_words = [" ".join(w.split()) for w in NUMBER.split(ref)]
    new_words = [" ".join(w.split()) for w in NUMBER.split(new)]
    if len(ref_numbers) != len(new_numbers) or ref_words != new_words:
        return new, []  # nbval's own diff says what differs
    if specs is not None and len(specs) != len(ref_numbers):
        specs = None  # metadata that does not describe this text: treat as undeclared
    problems = []
    for k, (r, n) in enumerate(zip(ref_numbers, new_numbers, strict=True)):
        spec = specs[k] if specs is not None else None
        why = number_within(r, n, spec, cell_tolerance)
        if why:
            problems.append(f"number {k + 1} of {len(ref_numbers)}: {why}")
    return (ref, []) if not problems else (new, problems)


def _text_fields(output) -> list[tuple[dict, str]]:
    if output.get("output_type") == "stream":
        return [(output, "text")]
    data = output.get("data", {})
    return [(data, key) for key in data if key == "text/plain"]


def reconcile_outputs(test: list, ref: list, cell_tolerance: dict | None) -> tuple[list, list]:
    """Copies of the re-run's outputs with numbers within tolerance set to the stored ones."""
    test = copy.deepcopy(test)  # NotebookNodes, streams coalesced by nbval's runtest
    problems: list[str] = []
    if len(test) != len(ref):
        return test, problems
    for t, r in zip(test, ref, strict=True):
        if t.get("output_type") != r.get("output_type") or t.get("name") != r.get("name"):
            continue
        specs = (r.get("metadata") or {}).get("mmbook", {}).get("numbers")
        for (t_holder, key), (r_holder, _) in zip(_text_fields(t), _text_fields(r), strict=False):
            t_text, r_text = _join(t_holder[key]), _join(r_holder[key])
            text, why = reconcile_text(r_text, t_text, specs, cell_tolerance)
            t_holder[key] = text
            problems += why
    return test, problems


def _join(text) -> str:
    return "".join(text) if isinstance(text, list) else text


def _cell_tolerance(cell) -> dict | None:
    return cell.get("metadata", {}).get("mmbook", {}).get("tolerance")


def _prose_after(item) -> list[tuple[int, dict]]:
    """The stored ``{eval}`` results of the markdown cells between this code cell and the next."""
    cells = item.parent.nb.cells
    index = next(i for i, c in enumerate(cells) if c is item.cell)
    found = []
    for j in range(index + 1, len(cells)):
        if cells[j].cell_type == "code":
            break
        for entry in cells[j].get("metadata", {}).get("user_expressions", []):
            found.append((j, entry))
    return found


def _evaluate(item, expressions: list[str], timeout: float = 60) -> dict:
    kernel = item.parent.kernel
    msg_id = kernel.kc.execute(
        "",
        silent=True,
        store_history=False,
        user_expressions={str(k): e for k, e in enumerate(expressions)},
    )
    while True:
        try:
            msg = kernel.get_message(stream="shell", timeout=timeout)
        except Empty:
            raise RuntimeError("the kernel did not answer the prose's {eval} expressions") from None
        if msg["parent_header"].get("msg_id") == msg_id:
            return {int(k): v for k, v in msg["content"].get("user_expressions", {}).items()}


def check_prose(item) -> list[str]:
    """Evaluate the stored ``{eval}`` expressions that follow this cell; list what differs."""
    stored = _prose_after(item)
    if not stored:
        return []
    results = _evaluate(item, [entry["expression"] for _, entry in stored])
    problems = []
    for k, (j, entry) in enumerate(stored):
        where = f"markdown cell {j}, {{eval}}`{entry['expression']}`"
        new = results.get(k, {})
        if new.get("status") != "ok":
            problems.append(f"{where}: {new.get('ename', 'error')}: {new.get('evalue', '')}")
            continue
        ref_text = _join(entry["result"].get("data", {}).get("text/plain", ""))
        new_text = _join(new.get("data", {}).get("text/plain", ""))
        specs = (entry["result"].get("metadata") or {}).get("mmbook", {}).get("numbers")
        text, why = reconcile_text(ref_text, new_text, specs, None)
        if why:
            problems += [f"{where}: {w}" for w in why]
        elif text != ref_text:
            problems.append(f"{where}: stored {ref_text!r}, the re-run gives {new_text!r}")
    return problems


if IPyNbCell is not None:
    _compare_outputs = IPyNbCell.compare_outputs
    _runtest = IPyNbCell.runtest

    def compare_outputs(self, test, ref, skip_compare=None):
        test, problems = reconcile_outputs(test, ref, _cell_tolerance(self.cell))
        same = _compare_outputs(self, test, ref, skip_compare)
        if problems:
            self.comparison_traceback.append("Numbers outside their declared tolerance:")
            self.comparison_traceback += [f"  {p}" for p in problems]
        return same and not problems

    def runtest(self):
        _runtest(self)
        problems = check_prose(self)
        if problems:
            self.raise_cell_error("The prose after this cell differs", "\n".join(problems))

    IPyNbCell.compare_outputs = compare_outputs
    IPyNbCell.runtest = runtest

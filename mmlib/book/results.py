"""Results a reader can check: a measured number, its seed band, how far a re-run may move it.

A chapter prints each result as a number, never as a bare ``True``. Another machine, the GPU
kernel or a reader's own run takes a slightly different path through training (its sums round
differently), so its numbers differ a little. Two things say by how much:

- a **seed band**: the range of the same measurement over several seeds, measured by
  ``make bands`` and stored in ``mmlib/book/seed_bands.json`` with the command, date and machine.
  :func:`report` shows a headline result with its band and says whether this run is on track;
- a **tolerance** given with the value (``Number(0.84, tol=0.05)``) for other measured numbers.

The prose of a chapter inserts numbers with MyST's ``{eval}`` role, so text and outputs come from
one run; ``make notebooks`` stores each value with the notebook and the book's build reads it.
Validation (``tests/nbval_numbers.py``) accepts a re-run's number when it lies within what the
stored output declares: the band (widened by :attr:`Band.margin`), the tolerance, or, for
machine-dependent figures such as seconds, any number.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Band", "Number", "banded", "earlier_run", "report", "say", "seed_band", "show_table"]

BANDS_FILE = Path(__file__).with_name("seed_bands.json")
#: Results of earlier versions of a chapter, kept for comparison with the commit that made them.
EARLIER_RUNS_FILE = Path(__file__).with_name("earlier_runs.json")

# A number as the book prints it: 0.883, -1.5, 68,090, 4e-21 (a percent sign stays outside).
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w]|\.\d)")

# What a re-run may print instead of a stored number: None (the same text), "any"
# (a machine-dependent figure), or [lo, hi].
Allowed = None | str | tuple[float, float]


def parse_number(text: str) -> float:
    """The value of one :data:`NUMBER` match: ``"68,090"`` is 68090.0."""
    return float(text.replace(",", ""))


@dataclass(frozen=True)
class Band:
    """The range of one measurement over several seeds (``make bands``).

    A run is on track when its value lies in ``[lo - margin, hi + margin]``: a new seed of the
    same measurement falls outside the range of the ones measured before about once in
    ``seeds + 1`` runs, so the range is widened by half its width (at least 2% of its
    magnitude) before it is used to judge a run.
    """

    lo: float
    hi: float
    seeds: int
    fmt: str = ".3f"

    @property
    def margin(self) -> float:
        return max(0.5 * (self.hi - self.lo), 0.02 * max(abs(self.lo), abs(self.hi)))

    @property
    def accepted(self) -> tuple[float, float]:
        return (self.lo - self.margin, self.hi + self.margin)

    def accepts(self, value: float) -> bool:
        lo, hi = self.accepted
        return lo <= value <= hi

    def __repr__(self) -> str:
        return f"{_format(self.lo, self.fmt)}–{_format(self.hi, self.fmt)} over {self.seeds} seeds"

    __str__ = __repr__


def _format(value: float, fmt: str) -> str:
    return format(round(value), fmt) if fmt.endswith("d") else format(value, fmt)


class Number(float):
    """A float that prints as the book shows it and declares how far a re-run may move it.

    ``fmt`` is a format spec (``".3f"``, ``".1f"``, ``",d"``, ``".0%"``). Give at most one of
    ``band`` (a :class:`Band`: the re-run must be on track), ``tol`` (an absolute tolerance) or
    ``machine=True`` (seconds, FLOP/s: any number is accepted). Without them the re-run must
    print the same text. In a notebook ``{eval}`` and ``print`` show ``repr(number)``.
    """

    fmt: str
    band: Band | None
    allowed: Allowed

    def __new__(
        cls,
        value: float,
        fmt: str = ".3f",
        *,
        band: Band | None = None,
        tol: float | None = None,
        machine: bool = False,
    ) -> Number:
        if not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise TypeError(f"value must be a number, got {type(value).__name__} {value!r}")
        if sum(x is not None and x is not False for x in (band, tol, machine)) > 1:
            raise ValueError("give at most one of band, tol and machine=True")
        if tol is not None and not tol >= 0:
            raise ValueError(f"tol must be a number >= 0, got {tol!r}")
        number = super().__new__(cls, float(value))
        number.fmt, number.band, number.measured = fmt, band, None
        if band is not None:
            number.allowed = band.accepted
        elif tol is not None:
            number.allowed = (float(value) - tol, float(value) + tol)
        else:
            number.allowed = "any" if machine else None
        return number

    def __repr__(self) -> str:
        return _format(float(self), self.fmt)

    __str__ = __repr__

    def _repr_mimebundle_(self, include=None, exclude=None):
        """What ``{eval}`` and a cell's last line display: the text and its allowed range."""
        text = repr(self)
        return {"text/plain": text}, {"mmbook": {"numbers": _specs(text, self.allowed)}}


def _specs(text: str, allowed: Allowed) -> list:
    """One entry per :data:`NUMBER` in ``text``, each with what a re-run may print instead."""
    spec = [float(f"{x:.6g}") for x in allowed] if isinstance(allowed, tuple) else allowed
    return [spec for _ in NUMBER.finditer(text)]


def seed_band(name: str, path: Path | str | None = None) -> Band:
    """The stored seed band of the measurement ``name`` (for example ``"ch2.early_fusion"``)."""
    path = Path(path) if path is not None else BANDS_FILE
    bands = json.loads(path.read_text(encoding="utf-8"))["bands"] if path.exists() else {}
    if name not in bands:
        raise KeyError(f"no seed band named {name!r} in {path.name}: run `make bands`")
    entry = bands[name]
    return Band(min(entry["values"]), max(entry["values"]), len(entry["values"]), entry["fmt"])


def earlier_run(run: str, path: Path | str | None = None, seed: int = 0) -> dict[str, Number]:
    """The stored results of a run the page does not make itself (``earlier_runs.json``): an
    earlier version of a chapter, or a page's run notes (``make run-notes``). For each
    measurement, ``seed``'s value (the page's seed 0 by default) as a :class:`Number` whose
    ``band`` is its range over the run's seeds. They are read, not measured again: the entry
    names the commit and the command that made them, so a reader can reproduce them, and a
    re-run of the page prints the same text."""
    path = Path(path) if path is not None else EARLIER_RUNS_FILE
    runs = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if run not in runs:
        raise KeyError(f"no earlier run named {run!r} in {path.name}")
    entry, seeds = runs[run], len(runs[run]["seeds"])
    if seed not in entry["seeds"]:
        raise ValueError(f"seed must be one of the run's seeds {entry['seeds']}, got {seed!r}")
    results = {}
    for name, values in entry["values"].items():
        number = Number(values[entry["seeds"].index(seed)], ".2f")
        number.band = Band(min(values), max(values), seeds, ".2f")
        results[name] = number
    return results


def report(name: str, value: float, label: str, fmt: str = ".3f") -> Number:
    """Show a headline result with its seed band and say whether this run is on track.

    Prints, for example, ``early fusion, test accuracy: 0.883 (seed band 0.850–0.940 over
    10 seeds; on track)``, and returns the value as a :class:`Number` for the prose.
    ``make bands`` reads the value of every ``report`` back from the notebook's outputs.
    """
    if not isinstance(label, str):
        raise TypeError(f"label must be a str, got {type(label).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"value must be a finite number, got {value!r}")
    extra = {"report": {"name": name, "value": float(value), "fmt": fmt}}
    if os.environ.get("MMBOOK_SEED"):  # `make bands` is measuring the band itself
        number = Number(value, fmt)
        _display(
            [(f"{label}: ", None), (repr(number), None), (" (measuring the band)", None)], extra
        )
        return number
    band = seed_band(name)
    number = Number(value, fmt, band=band)
    verdict = "on track" if band.accepts(number) else "OFF TRACK: outside the band's margin"
    segments = [
        (f"{label}: ", None),
        (repr(number), number.allowed),
        (f" (seed band {band}; {verdict})", None),
    ]
    _display(segments, extra)
    return number


def banded(name: str, value: float, fmt: str = ".3f") -> Number:
    """A measurement with its own seed band, shown in a table or a line rather than headlined.

    Like :func:`report`, but it prints nothing: the :func:`show_table` or :func:`say` that shows
    it records it for ``make bands``, and a re-run must be on track for the band. For results
    that swing from seed to seed (a training path's accident), which a fixed ``tol`` would
    either hide or fail on another CPU.
    """
    if not math.isfinite(float(value)):
        raise ValueError(f"value must be a finite number, got {value!r}")
    measuring = bool(os.environ.get("MMBOOK_SEED"))  # `make bands` is measuring the band itself
    number = Number(value, fmt) if measuring else Number(value, fmt, band=seed_band(name))
    number.measured = {"name": name, "value": float(value), "fmt": fmt}
    return number


def _measured(values) -> dict | None:
    """Output metadata that lets ``make bands`` read back the :func:`banded` numbers shown."""
    found = [v.measured for v in values if isinstance(v, Number) and v.measured]
    return {"reports": found} if found else None


def show_table(rows: dict[str, dict[str, object]], first: str = "") -> None:
    """Display a table of results: one row per key of ``rows``, one column per inner key.

    Cells that are :class:`Number` print in their own format and keep their allowed range;
    ints print with thousands separators and must be reproduced exactly; other values print
    with ``str``.
    """
    if not isinstance(rows, dict) or not rows:
        raise TypeError("rows must be a non-empty dict of dicts")
    columns = list(dict.fromkeys(k for row in rows.values() for k in row))
    cells = {name: [_cell(row.get(col, "")) for col in columns] for name, row in rows.items()}
    label_width = max(len(first), *(len(n) for n in rows))
    widths = [max(len(col), *(len(cells[n][j][0]) for n in rows)) for j, col in enumerate(columns)]
    segments = [(first.ljust(label_width), None)]
    segments += [("  " + col.rjust(w), None) for col, w in zip(columns, widths, strict=True)]
    for name in rows:
        segments.append(("\n" + name.ljust(label_width), None))
        for (text, allowed), w in zip(cells[name], widths, strict=True):
            segments += [("  " + " " * (w - len(text)), None), (text, allowed)]
    _display(segments, _measured(v for row in rows.values() for v in row.values()))


def say(*parts: object) -> None:
    """Print ``parts`` on one line, separated by spaces, as ``print`` does, but let each
    :class:`Number` keep its allowed range (``print`` shows the text alone, so a re-run on
    another CPU would have to print exactly the same digits)."""
    segments: list[tuple[str, Allowed]] = []
    for k, part in enumerate(parts):
        segments.append((" " if k else "", None))
        if isinstance(part, Number):
            segments.append((repr(part), part.allowed))
        else:
            segments.append((str(part), None))
    _display(segments, _measured(parts))


def _cell(value: object) -> tuple[str, Allowed]:
    if isinstance(value, Number):
        return repr(value), value.allowed
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,d}", None
    return str(value), None


def _display(segments: list[tuple[str, Allowed]], extra: dict | None = None) -> None:
    """Display text whose numbers carry what a re-run may print instead (output metadata)."""
    from IPython.display import display

    text = "".join(s for s, _ in segments)
    specs = [spec for s, allowed in segments for spec in _specs(s, allowed)]
    if len(specs) != len(NUMBER.findall(text)):  # two segments ran together into one number
        raise ValueError(f"numbers of the table cannot be told apart in {text!r}")
    display(
        {"text/plain": text}, raw=True, metadata={"mmbook": {"numbers": specs, **(extra or {})}}
    )

"""mmlib.book.results: numbers that print as the book shows them and declare their tolerance."""

from __future__ import annotations

import json

import pytest

import mmlib
from mmlib.book import results
from mmlib.book.results import NUMBER, Band, Number, banded, report, say, seed_band, show_table
from tests.bad_input import raises_naming


@pytest.fixture
def bands_file(tmp_path, monkeypatch):
    path = tmp_path / "seed_bands.json"
    entry = {"values": [0.85, 0.94, 0.9, 0.88, 0.91], "fmt": ".3f", "notebook": "x.ipynb"}
    path.write_text(json.dumps({"bands": {"t.acc": entry}}))
    monkeypatch.setattr(results, "BANDS_FILE", path)
    monkeypatch.delenv("MMBOOK_SEED", raising=False)
    return path


@pytest.fixture
def shown(monkeypatch):
    """What results._display would show: (text, metadata) per call."""
    calls = []

    def fake_display(obj, raw=False, metadata=None):
        calls.append((obj["text/plain"], metadata))

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", fake_display)
    return calls


def test_number_prints_in_its_format_and_stays_a_float():
    acc = Number(0.88333, tol=0.05)
    assert repr(acc) == str(acc) == f"{acc}" == "0.883"
    assert acc + 1 == pytest.approx(1.88333)
    assert repr(Number(68090.2, ",d")) == "68,090"
    assert repr(Number(0.5, ".0%")) == "50%"


def test_number_declares_what_a_rerun_may_print():
    assert Number(0.9, tol=0.05).allowed == pytest.approx((0.85, 0.95))
    assert Number(3.2, ".1f", machine=True).allowed == "any"
    assert Number(7, ",d").allowed is None
    data, meta = Number(0.9, tol=0.05)._repr_mimebundle_()
    assert data == {"text/plain": "0.900"}
    assert meta["mmbook"]["numbers"] == [[0.85, 0.95]]


def test_number_rejects_bad_input():
    with raises_naming(TypeError, "value"):
        Number("0.9")
    with raises_naming(ValueError, "machine"):
        Number(0.9, tol=0.1, machine=True)
    with raises_naming(ValueError, "tol"):
        Number(0.9, tol=-1)


def test_band_widens_the_seed_range_by_half_its_width():
    band = Band(0.85, 0.95, 5)
    assert band.margin == pytest.approx(0.05)
    assert band.accepts(0.81) and not band.accepts(0.79)
    assert repr(band) == "0.850–0.950 over 5 seeds"
    # a band of equal values still accepts 2% of its magnitude
    assert Band(1.0, 1.0, 5).accepted == pytest.approx((0.98, 1.02))


def test_seed_band_reads_the_stored_file(bands_file):
    band = seed_band("t.acc")
    assert (band.lo, band.hi, band.seeds) == (0.85, 0.94, 5)
    with pytest.raises(KeyError, match="make bands"):
        seed_band("t.missing")


def test_report_shows_the_band_and_the_verdict(bands_file, shown):
    value = report("t.acc", 0.9012, "toy accuracy")
    text, meta = shown[-1]
    assert text == "toy accuracy: 0.901 (seed band 0.850–0.940 over 5 seeds; on track)"
    assert meta["mmbook"]["report"] == {"name": "t.acc", "value": 0.9012, "fmt": ".3f"}
    # one entry per number in the text: the value's range, then the band's figures exactly
    assert meta["mmbook"]["numbers"][0] == pytest.approx([0.805, 0.985])
    assert meta["mmbook"]["numbers"][1:] == [None, None, None]
    assert isinstance(value, Number) and value.band == seed_band("t.acc")
    report("t.acc", 0.5, "toy accuracy")
    assert "OFF TRACK" in shown[-1][0]


def test_report_while_measuring_bands_needs_no_band(bands_file, shown, monkeypatch):
    monkeypatch.setenv("MMBOOK_SEED", "3")
    report("t.new", 0.7, "new")
    assert shown[-1][0] == "new: 0.700 (measuring the band)"
    assert mmlib.book_seed() == 3
    monkeypatch.setenv("MMBOOK_SEED", "x")
    with raises_naming(ValueError, "MMBOOK_SEED"):
        mmlib.book_seed()


def test_report_rejects_bad_input(bands_file):
    with raises_naming(ValueError, "value"):
        report("t.acc", float("nan"), "x")
    with raises_naming(TypeError, "label"):
        report("t.acc", 0.9, 3)


def test_say_prints_like_print_and_keeps_each_numbers_tolerance(shown):
    say(
        "gap:",
        Number(0.68, ".2f", tol=0.2),
        "of",
        200,
        "scenes; took",
        Number(3.2, ".1f", machine=True),
    )
    text, meta = shown[-1]
    assert text == "gap: 0.68 of 200 scenes; took 3.2"
    assert meta["mmbook"]["numbers"] == [pytest.approx([0.48, 0.88]), None, "any"]


def test_show_table_keeps_each_numbers_tolerance(shown):
    rows = {
        "early fusion": {
            "params": 68090,
            "test": Number(0.883, tol=0.1),
            "s": Number(6.7, ".1f", machine=True),
        },
        "late 2": {
            "params": 79346,
            "test": Number(0.935, tol=0.1),
            "s": Number(4.9, ".1f", machine=True),
        },
    }
    show_table(rows, first="model")
    text, meta = shown[-1]
    assert text.splitlines()[1].split() == ["early", "fusion", "68,090", "0.883", "6.7"]
    specs = meta["mmbook"]["numbers"]
    assert len(specs) == len(NUMBER.findall(text))
    # the row label "late 2" holds a number that must match exactly
    assert specs[3:] == [None, None, pytest.approx([0.835, 1.035]), "any"]
    with raises_naming(TypeError, "rows"):
        show_table({})


def test_banded_numbers_take_their_band_and_are_recorded_where_shown(bands_file, shown):
    cell = banded("t.acc", 0.9012, ".2f")
    assert repr(cell) == "0.90" and cell.allowed == pytest.approx((0.805, 0.985))
    show_table({"model": {"accuracy": cell, "questions": 200}}, first="toy")
    text, meta = shown[-1]
    assert text.splitlines()[1].split() == ["model", "0.90", "200"]
    assert meta["mmbook"]["reports"] == [{"name": "t.acc", "value": 0.9012, "fmt": ".2f"}]
    assert meta["mmbook"]["numbers"][0] == pytest.approx([0.805, 0.985])
    say("toy:", cell)
    assert shown[-1][1]["mmbook"]["reports"][0]["name"] == "t.acc"
    show_table({"model": {"accuracy": Number(0.9, tol=0.1)}})
    assert "reports" not in shown[-1][1]["mmbook"]  # a plain Number is not measured


def test_banded_while_measuring_needs_no_band_and_rejects_bad_input(bands_file, monkeypatch):
    with pytest.raises(KeyError, match="make bands"):
        banded("t.unknown", 0.5)
    with raises_naming(ValueError, "value"):
        banded("t.acc", float("inf"))
    monkeypatch.setenv("MMBOOK_SEED", "2")
    number = banded("t.unknown", 0.5)
    assert number.allowed is None and number.measured["value"] == 0.5


def test_earlier_run_reads_seed_0_and_the_range_over_seeds(tmp_path):
    path = tmp_path / "earlier.json"
    entry = {"commit": "abc", "reproduce": "make bands", "seeds": [1, 0, 2]}
    entry["values"] = {"seen.macro": [0.5, 0.9, 0.7]}
    path.write_text(json.dumps({"ch.old": entry}))
    old = results.earlier_run("ch.old", path)
    assert float(old["seen.macro"]) == 0.9 and repr(old["seen.macro"]) == "0.90"
    assert (old["seen.macro"].band.lo, old["seen.macro"].band.hi) == (0.5, 0.9)
    assert old["seen.macro"].allowed is None  # read, not measured: a re-run prints the same
    with pytest.raises(KeyError, match="ch.new"):
        results.earlier_run("ch.new", path)
    assert float(results.earlier_run("ch.old", path, seed=2)["seen.macro"]) == 0.7
    with pytest.raises(ValueError, match=r"seed must be one of the run's seeds \[1, 0, 2\], got 3"):
        results.earlier_run("ch.old", path, seed=3)


def test_the_stored_earlier_runs_name_their_commit_and_command():
    runs = json.loads(results.EARLIER_RUNS_FILE.read_text())
    for name, entry in runs.items():
        assert entry["commit"]
        if "code_sha256" in entry:  # a page's run notes, still the box's code (test_run_notes)
            assert entry["reproduce"].startswith("make run-notes NB=chapters/")
        else:  # an earlier version of a chapter
            assert entry["reproduce"].startswith(f"git checkout {entry['commit']}")
        assert 0 in entry["seeds"] and len(entry["seeds"]) >= 5
        assert all(len(v) == len(entry["seeds"]) for v in entry["values"].values()), name
        assert results.earlier_run(name)

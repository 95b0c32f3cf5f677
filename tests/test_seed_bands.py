"""tools/seed_bands.py: the values of every report() are read back from a run's outputs."""

from __future__ import annotations

import nbformat

from tools.seed_bands import _entry, reported_values


def test_reported_values_are_read_from_output_metadata(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("report(...)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "acc: 0.900 (measuring the band)"},
            metadata={"mmbook": {"report": {"name": "t.acc", "value": 0.9, "fmt": ".3f"}}},
        ),
        nbformat.v4.new_output("stream", name="stdout", text="other 0.5\n"),
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "table 0.70 0.20"},
            metadata={
                "mmbook": {
                    "reports": [
                        {"name": "t.a", "value": 0.7, "fmt": ".2f"},
                        {"name": "t.b", "value": 0.2, "fmt": ".2f"},
                    ]
                }
            },
        ),
    ]
    nb.cells = [cell]
    expected = {"t.acc": (0.9, ".3f"), "t.a": (0.7, ".2f"), "t.b": (0.2, ".2f")}
    assert reported_values(nb) == expected
    entry = _entry(tmp_path / "x.ipynb", [0.9, 0.8], [0, 1], ".3f", "0 1")
    assert entry["values"] == [0.9, 0.8] and entry["notebook"] == "x.ipynb"
    assert entry["command"] == "make bands NB=" + (tmp_path / "x.ipynb").as_posix() + ' SEEDS="0 1"'
    assert {"date", "machine"} <= set(entry)

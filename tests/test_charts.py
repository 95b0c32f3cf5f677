"""mmlib.book.charts: grouped, value-labelled bars and the confusion-count matrix."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mmlib.book.charts import count_matrix, grouped_bars
from tests.bad_input import raises_naming


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_grouped_bars_centres_clusters_on_the_category_ticks(ax):
    groups = {"seen": [0.9, 0.5, 0.25], "held-out": [0.8, 0.4, 0.125]}
    containers = grouped_bars(ax, groups, ["a", "b", "c"], styles={"held-out": {"hatch": "//"}})
    assert [c.get_label() for c in containers] == ["seen", "held-out"]
    seen, held = ([bar.get_x() + bar.get_width() / 2 for bar in c] for c in containers)
    assert np.allclose([(s + h) / 2 for s, h in zip(seen, held, strict=True)], [0, 1, 2])
    assert seen[0] < held[0]  # groups in the order given
    assert [bar.get_height() for bar in containers[1]] == groups["held-out"]
    assert all(bar.get_hatch() == "//" for bar in containers[1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == sorted(f"{v:.2f}" for values in groups.values() for v in values)


def test_grouped_bars_needs_one_value_per_category(ax):
    with raises_naming(ValueError, "groups"):
        grouped_bars(ax, {"seen": [0.1, 0.2]}, ["a", "b", "c"])
    with raises_naming(TypeError, "groups"):
        grouped_bars(ax, [[0.1, 0.2, 0.3]], ["a", "b", "c"])


def test_count_matrix_writes_every_count_in_its_cell(ax):
    counts = np.array([[5, 1], [0, 7]])
    count_matrix(ax, counts, ["left", "right"])
    written = {(t.get_position(), t.get_text(), t.get_color()) for t in ax.texts}
    # (column, row): counts above half of the largest are written white
    expected = {((0, 0), "5", "w"), ((1, 0), "1", "k"), ((0, 1), "0", "k"), ((1, 1), "7", "w")}
    assert written == expected
    assert ax.get_ylabel() == "true"
    with raises_naming(ValueError, "counts"):
        count_matrix(ax, np.zeros((2, 3)), ["left", "right"])


def test_count_matrix_can_leave_rows_unnamed(ax):
    count_matrix(ax, np.eye(2), ["left", "right"], row_labels=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["", ""]
    assert ax.get_ylabel() == ""

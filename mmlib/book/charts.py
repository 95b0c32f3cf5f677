"""The two charts the chapters draw again and again: grouped bars that carry their values, and
a confusion matrix of counts.

Plain matplotlib underneath: these only take the offset arithmetic and the per-cell text out of
the chapters' plotting cells, so that a cell reads as what it shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmlib.validate import check_type, require

__all__ = ["count_matrix", "grouped_bars"]


def grouped_bars(
    ax,
    groups: Mapping[str, Sequence[float]],
    categories: Sequence[str],
    *,
    fmt: str = "%.2f",
    styles: Mapping[str, dict] | None = None,
    value_labels: dict | None = None,
    width: float = 0.8,
) -> list:
    """For each category, one bar per group side by side, each labelled with its value.

    ``groups`` maps a legend label to its values, one per category; ``styles`` maps a legend
    label to extra ``ax.bar`` arguments (``color``, ``hatch``, ...);
    ``value_labels`` are extra ``ax.bar_label`` arguments (default
    8 pt). The x ticks are the categories, centred under their bars. Returns the bar containers.
    """
    check_type("groups", groups, Mapping, "mapping from legend label to values")
    for label, values in groups.items():
        given = f"{len(values)} for {label!r}"
        require(len(values) == len(categories), "groups", "one value per category", given)
    styles, value_labels = styles or {}, {"fontsize": 8, **(value_labels or {})}
    step = width / len(groups)
    centres = np.arange(len(categories))
    containers = []
    for k, (label, values) in enumerate(groups.items()):
        offset = (k - (len(groups) - 1) / 2) * step  # clusters centred on the ticks
        bars = ax.bar(centres + offset, values, step * 0.95, label=label, **styles.get(label, {}))
        ax.bar_label(bars, fmt=fmt, **value_labels)
        containers.append(bars)
    ax.set_xticks(centres, list(categories))
    return containers


def count_matrix(
    ax, counts, labels: Sequence[str], *, fontsize: float = 9, row_labels: bool = True
) -> None:
    """Draw a square matrix of counts (rows: true class, columns: predicted class) as a heat
    map with every count written in its cell, white on the darker half. ``row_labels=False``
    leaves the rows unnamed (for a panel beside one that names them)."""
    counts = np.asarray(counts)
    require(counts.shape == (len(labels),) * 2, "counts", "square, one row per label", counts.shape)
    ax.imshow(counts, cmap="Blues")
    for (i, j), count in np.ndenumerate(counts):
        dark = count > counts.max() / 2
        colour = "w" if dark else "k"
        ax.text(j, i, int(count), ha="center", va="center", fontsize=fontsize, color=colour)
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels if row_labels else [])
    ax.set(xlabel="predicted", ylabel="true" if row_labels else "")

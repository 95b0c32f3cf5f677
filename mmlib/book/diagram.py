"""Box-and-arrow diagrams of model architectures, drawn with matplotlib."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

__all__ = ["draw_diagram"]


def _edge_point(x, y, dx, dy, width, height):
    """Where the ray from a box centre (x, y) in direction (dx, dy) leaves the box."""
    scales = [
        width / 2 / abs(dx) if dx else float("inf"),
        height / 2 / abs(dy) if dy else float("inf"),
    ]
    t = min(scales)
    return (x + t * dx, y + t * dy)


def draw_diagram(
    boxes: dict[str, tuple[float, float, str]],
    arrows: list[tuple[str, str]],
    *,
    box_size: tuple[float, float] = (2.6, 0.9),
    colours: dict[str, str] | None = None,
    ax=None,
    title: str | None = None,
):
    """Draw named boxes and the arrows between them; return the matplotlib Figure.

    ``boxes`` maps a name to ``(x, y, label)`` (box centre in data units, text inside);
    ``arrows`` lists ``(from_name, to_name)`` pairs; ``colours`` maps names to face colours.
    """
    if not isinstance(boxes, dict) or not boxes:
        raise ValueError(f"boxes must be a non-empty dict name -> (x, y, label), got {boxes!r}")
    for name, spec in boxes.items():
        if not (isinstance(spec, tuple) and len(spec) == 3):
            raise ValueError(f"boxes[{name!r}] must be a tuple (x, y, label), got {spec!r}")
    for start, end in arrows:
        for end_name in (start, end):
            if end_name not in boxes:
                raise ValueError(f"arrows name a box that is not in boxes: {end_name!r}")
    colours = colours or {}
    width, height = box_size
    if ax is None:
        xs = [x for x, _, _ in boxes.values()]
        ys = [y for _, y, _ in boxes.values()]
        span_x, span_y = max(xs) - min(xs) + width + 0.6, max(ys) - min(ys) + height + 0.6
        _, ax = plt.subplots(figsize=(min(1.6 * span_x, 12), min(1.6 * span_y, 8)))
    for name, (x, y, label) in boxes.items():
        ax.add_patch(
            FancyBboxPatch(
                (x - width / 2, y - height / 2),
                width,
                height,
                boxstyle="round,pad=0.05",
                facecolor=colours.get(name, "#e8eef7"),
                edgecolor="#334",
            )
        )
        ax.text(x, y, label, ha="center", va="center", fontsize=8.5)
    for start, end in arrows:
        (x0, y0, _), (x1, y1, _) = boxes[start], boxes[end]
        ax.annotate(
            "",
            xy=_edge_point(x1, y1, x0 - x1, y0 - y1, width, height),
            xytext=_edge_point(x0, y0, x1 - x0, y1 - y0, width, height),
            arrowprops=dict(arrowstyle="-|>", color="#334", lw=1.3, shrinkA=2, shrinkB=2),
        )
    xs = [x for x, _, _ in boxes.values()]
    ys = [y for _, y, _ in boxes.values()]
    ax.set_xlim(min(xs) - width / 2 - 0.3, max(xs) + width / 2 + 0.3)
    ax.set_ylim(min(ys) - height / 2 - 0.3, max(ys) + height / 2 + 0.3)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax.figure

"""Figures a reader can read: text at least 8 pt once the figure is scaled to the page.

The book's pages show a figure at most ``PAGE_WIDTH_IN`` inches wide (the text column of
the website at the notebook's 100 dpi, and of the PDF); a wider figure is scaled down, and its
text with it. :func:`use_book_style` sets readable defaults and checks every figure when it is
drawn: a text smaller than 8 pt at page width is reported on stderr (which nbval compares, so
validation fails), naming the text and what to change.
"""

from __future__ import annotations

import sys

import matplotlib as mpl
import matplotlib.pyplot as plt

__all__ = ["MIN_POINTS", "PAGE_WIDTH_IN", "small_texts", "use_book_style"]

#: Width of the page's text column, in inches; a wider figure is scaled down to it.
PAGE_WIDTH_IN = 7.5
#: The smallest text size, in points, a figure may show once scaled to the page.
MIN_POINTS = 8.0


def small_texts(fig) -> list[tuple[str, float]]:
    """``(text, points at page width)`` for every visible text below ``MIN_POINTS``."""
    scale = min(1.0, PAGE_WIDTH_IN / fig.get_figwidth())
    found = []
    for text in fig.findobj(mpl.text.Text):
        if text.get_visible() and text.get_text().strip() and text.get_figure() is fig:
            points = text.get_fontsize() * scale
            if points < MIN_POINTS - 1e-6:
                found.append((text.get_text().strip(), round(points, 1)))
    return found


def _check_on_draw(event) -> None:
    small = small_texts(event.canvas.figure)
    if small:
        width = event.canvas.figure.get_figwidth()
        shown = "; ".join(f"{t[:30]!r} {p} pt" for t, p in small[:4])
        print(
            f"figure text below {MIN_POINTS:g} pt at page width ({width:g} in wide, page "
            f"{PAGE_WIDTH_IN:g} in): {shown} ({len(small)} in all): enlarge the fonts or "
            "narrow the figure",
            file=sys.stderr,
        )


def watch(fig) -> None:
    """A ``figure.hooks`` entry: check the figure's text sizes whenever it is drawn."""
    fig.canvas.mpl_connect("draw_event", _check_on_draw)


def use_book_style() -> None:
    """Readable defaults for every figure that follows, and the size check on each."""
    mpl.rcParams.update(
        {
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.labelsize": 10,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "legend.fontsize": 9,
            "figure.titlesize": 11,
            "figure.figsize": (7.5, 3.6),
            # Jupyter saves a figure cropped to its contents plus this margin on every side:
            # matplotlib's 0.1 in made a 7.5 in figure 7.62 in wide, so the page scaled it down
            "savefig.pad_inches": 0.02,
        }
    )
    hooks = list(mpl.rcParams.get("figure.hooks", []))
    if "mmlib.book.plotting:watch" not in hooks:
        mpl.rcParams["figure.hooks"] = [*hooks, "mmlib.book.plotting:watch"]
    plt.close("all")

"""mmlib.book.plotting: figure text at least 8 pt once the figure is scaled to the page."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mmlib.book.plotting import MIN_POINTS, PAGE_WIDTH_IN, small_texts, use_book_style  # noqa: E402


@pytest.fixture
def book_style():
    with mpl.rc_context():
        use_book_style()
        yield
    plt.close("all")


def test_a_page_wide_figure_with_the_book_style_is_readable(book_style, capsys):
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 3))
    ax.plot([0, 1], [0, 1], label="line")
    ax.set(xlabel="steps", ylabel="loss", title="fine")
    ax.legend()
    fig.canvas.draw()
    assert small_texts(fig) == []
    assert capsys.readouterr().err == ""


def test_a_wide_figure_is_scaled_down_and_reported(book_style, capsys):
    fig, ax = plt.subplots(figsize=(2 * PAGE_WIDTH_IN, 3))
    ax.set_title("too small once halved")
    fig.canvas.draw()
    small = dict(small_texts(fig))
    assert small["too small once halved"] == pytest.approx(10 / 2)
    err = capsys.readouterr().err
    assert f"below {MIN_POINTS:g} pt at page width (15 in wide" in err and "in all" in err


def test_small_text_on_a_narrow_figure_is_reported(book_style):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.text(0.5, 0.5, "tiny", fontsize=6)
    assert ("tiny", 6.0) in small_texts(fig)

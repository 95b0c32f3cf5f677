"""mmlib/book/diagram.py: box-and-arrow diagrams."""

import matplotlib

matplotlib.use("Agg")

from mmlib.book.diagram import draw_diagram  # noqa: E402
from tests.bad_input import raises_naming  # noqa: E402


def test_draw_diagram_draws_and_validates():
    fig = draw_diagram({"a": (0, 0, "A"), "b": (3, 1, "B")}, [("a", "b")], title="t")
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and ax.get_title() == "t"
    with raises_naming(ValueError, "arrows"):
        draw_diagram({"a": (0, 0, "A")}, [("a", "c")])
    with raises_naming(ValueError, "boxes"):
        draw_diagram({}, [])
    with raises_naming(ValueError, "boxes"):
        draw_diagram({"a": (0, 0)}, [])

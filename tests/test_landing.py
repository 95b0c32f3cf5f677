"""The landing page's figure (tools/landing.py): the committed PNG and a quick drawing."""

from PIL import Image

from tools import landing


def test_committed_figure_was_drawn_by_the_tool():
    image = Image.open(landing.ASSETS / "landing.png")
    assert image.size == (900, 396)  # 7.5 x 3.3 in at 120 dpi: text of 8 pt stays 8 pt
    assert image.info.get("Software") == f"{landing.COMMAND}: the book's own code, seed 0"


def test_quick_drawing(tmp_path):
    """Every step of the tool, with a few training steps: three panels of four pictures."""
    out = landing.write(tmp_path / "landing.png", quick=True)
    image = Image.open(out)
    assert image.size == (900, 396)
    assert image.info["Software"].endswith("(quick): the book's own code, seed 0")


def test_search_and_generation_shapes():
    images, similarity = landing.search(landing.QUERY, steps=2, k=3)
    assert images.shape == (3, 3, 32, 32) and similarity.shape == (3,)
    assert bool((similarity[:-1] >= similarity[1:]).all())  # best first
    drawn = landing.generate(landing.PROMPT, steps=2, n=2)
    assert drawn.shape == (2, 3, 16, 16) and 0 <= float(drawn.min()) <= float(drawn.max()) <= 1

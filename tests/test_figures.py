"""Pictures of the shapes world for the pages: image grids and scenes with their captions."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from mmlib.book.figures import image_grid, show_scenes
from mmlib.data.scenes import make_scenes
from tests.bad_input import raises_naming


@pytest.mark.parametrize("count, columns", [(2, 8), (12, 6), (13, 5), (8, 8)])
def test_image_grid_matches_torchvision(count, columns):
    from torchvision.utils import make_grid

    images = torch.rand(count, 3, 7, 5)
    grid = image_grid(images, columns, pad=2, pad_value=0.3)
    assert torch.equal(grid, make_grid(images, nrow=columns, padding=2, pad_value=0.3))


def test_image_grid_names_bad_arguments():
    with raises_naming(ValueError, "images"):
        image_grid(torch.rand(3, 8, 8), 2)
    with raises_naming(ValueError, "columns"):
        image_grid(torch.rand(2, 3, 8, 8), 0)
    with raises_naming(TypeError, "pad"):
        image_grid(torch.rand(2, 3, 8, 8), 2, pad=1.5)


def test_show_scenes_draws_a_grid_with_captions():
    import matplotlib.pyplot as plt

    scenes = make_scenes(12, seed=7)
    fig = show_scenes(scenes, nrow=6)
    assert len(fig.axes) == 1 and len(fig.axes[0].texts) == 12
    assert fig.axes[0].texts[0].get_text().replace("\n", " ") == scenes.captions[0]
    plt.close(fig)
    fig, ax = plt.subplots()
    assert show_scenes(scenes.images[:5], ax=ax) is fig and not ax.texts
    plt.close(fig)


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: show_scenes(torch.zeros(2, 1, 32, 32)), ValueError, "scenes_or_images"),
        (lambda: show_scenes([1, 2]), TypeError, "scenes_or_images"),
        (lambda: show_scenes(torch.zeros(2, 3, 32, 32), nrow=0), ValueError, "nrow"),
        (lambda: show_scenes(torch.zeros(2, 3, 32, 32), captions=["a"]), ValueError, "captions"),
        (lambda: show_scenes(torch.zeros(2, 3, 32, 32), captions="ab"), TypeError, "captions"),
        (
            lambda: show_scenes(torch.zeros(2, 3, 8, 8, dtype=torch.long)),
            TypeError,
            "scenes_or_images",
        ),
        (lambda: show_scenes(torch.zeros(2, 3, 8, 8), captions=["a", 1]), TypeError, "captions"),
        (lambda: show_scenes(torch.zeros(2, 3, 8, 8), captions=5), TypeError, "captions"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, error, name):
    with raises_naming(error, name):
        call()

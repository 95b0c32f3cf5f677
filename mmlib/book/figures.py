"""Pictures of the shapes world for the pages: :func:`show_scenes` draws scenes in a grid with
their captions, :func:`image_grid` tiles images into one.

Kept apart from :mod:`mmlib.book.plotting`, which sets the book's figure style without
importing torch, so that a page with diagrams only starts quickly.
"""

from __future__ import annotations

import textwrap

import torch

from mmlib.book.plotting import MIN_POINTS, PAGE_WIDTH_IN
from mmlib.validate import check_images, check_int, check_strings, check_tensor, require

__all__ = ["image_grid", "show_scenes"]


def image_grid(images: torch.Tensor, columns: int, pad: int = 2, pad_value: float = 0.3):
    """Tile images ``(B, C, H, W)`` into one picture ``(C, rows * (H + pad) + pad,
    columns * (W + pad) + pad)``, ``pad`` pixels of ``pad_value`` around each image; at most
    ``B`` columns.

    ``torchvision.utils.make_grid`` does the same (``tests/test_figures.py`` checks that they
    agree), but importing torchvision also imports the compiler (``torch._dynamo``, through
    ``torchvision.ops``): 2 to 3 s in every notebook that draws scenes.
    """
    b, c, h, w = check_tensor("images", images, ndim=4).shape
    columns = min(check_int("columns", columns, minimum=1), b)
    check_int("pad", pad, minimum=0)
    rows = -(-b // columns)
    tiles = torch.full((rows * columns, c, h + pad, w + pad), pad_value, dtype=images.dtype)
    tiles[:b, :, pad:, pad:] = images  # each image with its padding above and to its left
    grid = tiles.view(rows, columns, c, h + pad, w + pad).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(c, rows * (h + pad), columns * (w + pad))
    return torch.nn.functional.pad(grid, (0, pad, 0, pad), value=pad_value)  # bottom, right


def show_scenes(scenes_or_images, captions=None, nrow: int = 8, ax=None):
    """Draw images in a grid (:func:`image_grid`) with a caption under each one.

    ``scenes_or_images``: :class:`~mmlib.data.scenes.Scenes` (their captions are used unless
    ``captions`` is given) or images ``(B, 3, H, W) float`` in [0, 1]. Returns the Figure.
    Captions are set at 8 pt or more once the figure is scaled to the page width
    (:mod:`mmlib.book.plotting`), wrapped to the width of their image, with room left under it.
    """
    import matplotlib.pyplot as plt

    if hasattr(scenes_or_images, "images") and hasattr(scenes_or_images, "captions"):
        images = scenes_or_images.images  # Scenes
        captions = scenes_or_images.captions if captions is None else captions
    else:
        images = check_images("scenes_or_images", scenes_or_images, size=None)
    check_int("nrow", nrow, minimum=1)
    if captions is not None:
        check_strings("captions", captions)
        require(len(captions) == len(images), "captions", f"{len(images)} captions", len(captions))
    columns = min(nrow, len(images))
    size, pad = images.shape[-1], 2
    images = images.detach().float().cpu().clamp(0, 1)
    grid_width = columns * (size + pad) + pad  # pixels
    margin = 0.15  # inches around the grid in a figure of its own
    width = (1.3 if captions is None else 1.6) * columns  # inches, of the figure
    grid_inches = width - 2 * margin  # the grid's width on the page
    if ax is not None:
        ax.figure.tight_layout()  # the box the grid gets in the caller's figure, laid out
        width = ax.figure.get_figwidth()
        grid_inches = ax.get_position().width * width
    lines, room = [], 0
    if captions is not None:
        # Text shrinks with the figure when the page shows it at PAGE_WIDTH_IN: set it larger
        # (the saved figure is up to 0.4 in wider than its size: margins of a tight bounding box)
        fontsize = MIN_POINTS * max(1.0, (width + 0.4) / PAGE_WIDTH_IN)
        points_per_pixel = 72 * grid_inches / grid_width
        chars = max(4, int(0.95 * size * points_per_pixel / (0.55 * fontsize)))
        lines = [textwrap.fill(c, chars, break_long_words=False) for c in captions]
        most = max(text.count("\n") + 1 for text in lines)
        room = int(-(-(most * 1.15 * fontsize + 6) // points_per_pixel))  # pixels under each
        images = torch.nn.functional.pad(images, (0, 0, 0, room), value=0.3)
    grid = image_grid(images, columns, pad=pad, pad_value=0.3)
    own_figure = ax is None
    if own_figure:
        height = grid_inches * grid.shape[1] / grid.shape[2] + 2 * margin
        fig, ax = plt.subplots(figsize=(width, height))
        fig.subplots_adjust(
            left=margin / width,
            right=1 - margin / width,
            bottom=margin / height,
            top=1 - margin / height,
        )
    else:
        fig = ax.figure
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    for k, text in enumerate(lines):
        x = pad + (k % columns) * (size + pad) + size / 2
        y = pad + (k // columns) * (size + room + pad) + size + 1
        ax.text(
            x, y, text, ha="center", va="top", fontsize=fontsize, color="white", linespacing=1.1
        )
    if not own_figure:  # lay out the caller's figure, as before
        fig.tight_layout()
    return fig

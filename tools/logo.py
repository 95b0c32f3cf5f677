"""The site's logo and favicon, drawn by the book's own code: a scene of the shapes world.

    python -m tools.logo        # writes book/assets/favicon.png and book/assets/logo.png

The favicon is a 32x32 scene exactly as ``mmlib.data.scenes.make_scenes`` renders it for the
chapters' models; the logo is the same scene enlarged eight times with every pixel kept square,
so the reader's first sight of the book is the data its models learn from. The scene is the
first of seed 0's two-object scenes whose objects differ in shape and in colour.
``tests/test_logo.py`` checks the committed files are what this draws.
"""

from __future__ import annotations

from pathlib import Path

import torch

ASSETS = Path(__file__).resolve().parents[1] / "book" / "assets"
SCALE = 8  # logo pixels per scene pixel: 256x256


def logo_scene(seed: int = 0, candidates: int = 64) -> torch.Tensor:
    """The first two-object scene of ``make_scenes(candidates, seed, num_objects=2)`` whose two
    objects differ in shape and in colour: ``(3, 32, 32)`` floats in [0, 1]."""
    from mmlib.data.scenes import make_scenes

    scenes = make_scenes(candidates, seed=seed, num_objects=2)
    shape, colour = scenes.attributes[:, :, 0], scenes.attributes[:, :, 1]  # (N, 2)
    differ = (shape[:, 0] != shape[:, 1]) & (colour[:, 0] != colour[:, 1])
    return scenes.images[int(differ.nonzero()[0, 0])]


def to_png(image: torch.Tensor, path: Path, scale: int = 1) -> None:
    """Write ``image (3, H, W)`` in [0, 1] as an 8-bit RGB PNG, each pixel ``scale`` x ``scale``."""
    from PIL import Image

    big = image.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    pixels = (big.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path, optimize=True)  # (H, W, 3) uint8: RGB


def write(out: Path = ASSETS) -> dict[str, Path]:
    """Draw the favicon and the logo into ``out``; their paths."""
    scene = logo_scene()
    paths = {"favicon": out / "favicon.png", "logo": out / "logo.png"}
    to_png(scene, paths["favicon"])
    to_png(scene, paths["logo"], SCALE)
    return paths


if __name__ == "__main__":
    for name, path in write().items():
        print(f"{name}: {path}")

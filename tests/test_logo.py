"""The site's logo and favicon (tools/logo.py) are the book's own scene, as committed."""

import numpy as np
import torch
from PIL import Image

from tools import logo


def test_committed_logo_and_favicon_are_what_the_tool_draws(tmp_path):
    drawn = logo.write(tmp_path)
    for name, path in drawn.items():
        committed = np.asarray(Image.open(logo.ASSETS / path.name).convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), committed), name
    favicon = np.asarray(Image.open(drawn["favicon"]))
    big = np.asarray(Image.open(drawn["logo"]))
    assert favicon.shape == (32, 32, 3) and big.shape == (256, 256, 3)
    assert np.array_equal(big[:: logo.SCALE, :: logo.SCALE], favicon)  # square pixels, 8x


def test_the_scene_has_two_objects_of_different_shape_and_colour():
    scene = logo.logo_scene()
    assert scene.shape == (3, 32, 32) and 0 <= scene.min() and scene.max() <= 1
    lit = scene.amax(0) > 0.5  # object pixels against the black ground
    assert 0.05 < lit.float().mean() < 0.6
    colours = {tuple((scene[:, y, x] * 4).round().tolist()) for y, x in lit.nonzero().tolist()}
    assert len(colours) >= 2
    assert torch.equal(scene, logo.logo_scene())  # the same scene every time

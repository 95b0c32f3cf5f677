"""Tiny videos: one shapes-world object sliding across a few frames, captioned by its motion.

A clip is ``frames`` images of 32x32 in which one object (from
:func:`mmlib.data.scenes.make_scenes`) moves ``step`` pixels per frame to the left, right, up or
down: "the small red circle moves left". Positions are drawn so that any *single* frame looks
the same whatever the direction: the object's place in one frame says nothing about where it
goes next, only the order of the frames does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmlib.data.scenes import make_scenes
from mmlib.data.world import COLOURS, IMAGE_SIZE, SHAPES, SIZES, Combinations
from mmlib.validate import check_int, check_ints, require

__all__ = ["Clips", "DIRECTIONS", "make_clips"]


DIRECTIONS = ("left", "right", "up", "down")


_AXIS = (0, 0, 1, 1)  # x for left/right, y for up/down (y grows downwards)


_SIGN = (-1, 1, -1, 1)


_LOW, _HIGH = 7, IMAGE_SIZE - 7  # an object centred in [7, 25] lies wholly inside the frame


@dataclass
class Clips:
    """A batch of N clips. Index it with an int, a slice or an index tensor to get ``Clips``.

    - ``videos``: ``(N, F, 3, 32, 32) float`` in [0, 1], frames in time order
    - ``directions``: ``(N,) int64``, index into :data:`DIRECTIONS`
    - ``attributes``: ``(N, 3) int64``, the object's [shape, colour, size] indices
    - ``centres``: ``(N, F, 2) float``, (x, y) pixel centre of the object in each frame
    - ``captions``: N strings, "the small red circle moves left"
    """

    videos: torch.Tensor
    directions: torch.Tensor
    attributes: torch.Tensor
    centres: torch.Tensor
    captions: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int | slice | torch.Tensor) -> Clips:
        if isinstance(index, bool) or not isinstance(index, (int, slice, torch.Tensor)):
            raise TypeError(f"index must be an int, a slice or an index tensor, got {index!r}")
        rows = torch.arange(len(self))[index].reshape(-1)
        return Clips(
            videos=self.videos[rows],
            directions=self.directions[rows],
            attributes=self.attributes[rows],
            centres=self.centres[rows],
            captions=[self.captions[i] for i in rows.tolist()],
        )


def _track(g: torch.Generator, n: int, frames: int, step: int) -> torch.Tensor:
    """``(n, frames)`` integer positions ``start + t * step`` inside [_LOW, _HIGH]."""
    start = torch.randint(_LOW, _HIGH - (frames - 1) * step + 1, (n, 1), generator=g)
    return start + step * torch.arange(frames).view(1, -1)


def _check_clip_args(n: object, seed: object, frames: object, step: object) -> None:
    check_ints(minimum=1, n=n, step=step)
    check_int("seed", seed, minimum=0)
    check_int("frames", frames, minimum=2)
    most = (_HIGH - _LOW) // (frames - 1)  # the longest step that keeps the object in the frame
    require(step <= most, "step", f"<= {most} for {frames} frames (to stay in the frame)", step)


def make_clips(
    n: int,
    seed: int = 0,
    *,
    frames: int = 4,
    step: int = 3,
    only: Combinations | None = None,
    exclude: Combinations | None = None,
) -> Clips:
    """Draw ``n`` clips of one object moving ``step`` pixels per frame; the same for the same seed.

    The direction is uniform over :data:`DIRECTIONS`. Along the motion the object visits
    ``start, start + step, ...`` (reversed for left and up); across it, it stays at
    ``start' + k * step`` for a random ``k``, so one frame picked at random has the same
    distribution of positions for every direction. ``only`` / ``exclude`` restrict the
    object as in :func:`mmlib.data.scenes.make_scenes`. Returns :class:`Clips` with
    ``videos (n, frames, 3, 32, 32)``.
    """
    _check_clip_args(n, seed, frames, step)
    g = torch.Generator().manual_seed(seed)
    scene_seed = int(torch.randint(2**31, (1,), generator=g))
    scenes = make_scenes(n, scene_seed, num_objects=1, only=only, exclude=exclude)
    directions = torch.randint(len(DIRECTIONS), (n,), generator=g)
    along = _track(g, n, frames, step)  # (n, F), increasing
    across = _track(g, n, frames, step)[
        torch.arange(n), torch.randint(frames, (n,), generator=g)
    ]  # (n,)
    axis = torch.tensor(_AXIS)[directions]  # (n,)
    backwards = torch.tensor(_SIGN)[directions] < 0
    along = torch.where(backwards.view(-1, 1), along.flip(1), along)
    target = torch.empty(n, frames, 2, dtype=torch.long)  # (x, y) per frame
    target[torch.arange(n), :, axis] = along
    target[torch.arange(n), :, 1 - axis] = across.view(-1, 1).expand(n, frames)
    centre = scenes.centres[:, 0]  # (n, 2) float, the object's centre in its scene
    shift = target - centre.round().long().view(n, 1, 2)  # (n, F, 2) whole pixels
    # Roll each scene by its shift: pixel (y, x) of frame t is pixel (y - dy, x - dx) of the
    # scene. The background is 0 and the object stays inside, so rolling is a pure shift.
    pixels, size = torch.arange(IMAGE_SIZE), IMAGE_SIZE
    rows = (pixels.view(1, 1, -1, 1) - shift[..., 1, None, None]) % size  # (n, F, H, 1)
    cols = (pixels.view(1, 1, 1, -1) - shift[..., 0, None, None]) % size  # (n, F, 1, W)
    source = (rows * size + cols).view(n, 1, frames * size * size)  # flat pixel to read
    flat = scenes.images.view(n, 3, size * size)
    videos = flat.gather(2, source.expand(n, 3, -1)).view(n, 3, frames, size, size)
    videos = videos.transpose(1, 2).contiguous()  # (n, F, 3, H, W)
    attributes = scenes.attributes[:, 0, :3].clone()
    captions = [
        f"the {SIZES[size]} {COLOURS[colour]} {SHAPES[shape]} moves {DIRECTIONS[d]}"
        for (shape, colour, size), d in zip(attributes.tolist(), directions.tolist(), strict=True)
    ]
    return Clips(
        videos=videos,
        directions=directions,
        attributes=attributes,
        centres=centre.view(n, 1, 2) + shift.float(),
        captions=captions,
    )

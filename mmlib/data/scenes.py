"""Scenes of the shapes world: 32x32 pictures with what made them, their caption and questions.

Each scene is an RGB image with one or two objects, the attributes that made it, a caption
("a small red circle left of a large blue square") and question-answer pairs ("what colour is
the circle?" -> "red"). The pictures are drawn with tensor masks over the pixel grid, so 10,000
scenes take about a second, and the same seed always gives the same scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmlib.data.captions import _caption
from mmlib.data.questions import _questions
from mmlib.data.world import (
    _ALL_OBJECTS,
    _CENTRE,
    _COLOUR_JITTER,
    _HALF,
    _PARTNERS,
    _POSITION_JITTER,
    _RGB,
    _SIZE_JITTER,
    _TRUE_RELATIONS,
    COLOURS,
    IMAGE_SIZE,
    SHAPES,
    SIZES,
    Combinations,
)
from mmlib.validate import check_choice, check_int, check_tensor, check_type, describe, require

__all__ = ["Scenes", "centre_objects", "make_scenes"]


@dataclass
class Scenes:
    """A batch of N scenes. Index it with an int, a slice or an index tensor to get ``Scenes``.

    - ``images``: ``(N, 3, 32, 32) float`` in [0, 1]
    - ``attributes``: ``(N, 2, 4) int64``, per object [shape, colour, size, position] indices
      into the vocabularies of :data:`~mmlib.data.world.ATTRIBUTES`; the second row is -1 when there
      is one object
    - ``num_objects``: ``(N,) int64``, 1 or 2
    - ``relations``: ``(N,) int64``, index into :data:`~mmlib.data.world.RELATIONS` of how
      object 0 stands to object 1 in the caption ("a <object 0> left of a <object 1>"), -1 for
      one object
    - ``centres``: ``(N, 2, 2) float``, (x, y) pixel centre of each object, -1 when absent
    - ``captions``: N strings; ``qa``: N lists of (question, one-word answer)
    """

    images: torch.Tensor
    attributes: torch.Tensor
    num_objects: torch.Tensor
    relations: torch.Tensor
    centres: torch.Tensor
    captions: list[str]
    qa: list[list[tuple[str, str]]]

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int | slice | torch.Tensor) -> Scenes:
        rows = _row_index("index", index, len(self))
        picked = rows.tolist()
        return Scenes(
            images=self.images[rows],
            attributes=self.attributes[rows],
            num_objects=self.num_objects[rows],
            relations=self.relations[rows],
            centres=self.centres[rows],
            captions=[self.captions[i] for i in picked],
            qa=[self.qa[i] for i in picked],
        )


def _row_index(name: str, index: object, length: int) -> torch.Tensor:
    """An int, slice, list of ints, or int/bool tensor -> ``(M,) int64`` row numbers."""
    if isinstance(index, slice):
        return torch.arange(length)[index]
    if isinstance(index, int) and not isinstance(index, bool):
        if not -length <= index < length:
            raise IndexError(f"{name} must be in [{-length}, {length}), got {index}")
        return torch.tensor([index % length])
    if isinstance(index, list):
        index = torch.tensor(index, dtype=torch.long)
    if not (isinstance(index, torch.Tensor) and index.ndim == 1):
        raise TypeError(f"{name} must be an int, slice or 1-D index tensor, got {describe(index)}")
    if index.dtype == torch.bool:
        return check_tensor(name, index, shape=(length,), allow_empty=True).nonzero().squeeze(1)
    check_tensor(name, index, dtype="integer", allow_empty=True)
    if len(index) and not -length <= int(index.min()) <= int(index.max()) < length:
        raise IndexError(f"{name} must hold rows in [{-length}, {length}), got {index.tolist()}")
    return index.long() % max(length, 1)


def _coverage(shape: torch.Tensor, centre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """How much of each pixel each object covers, ``(M, 32, 32) float`` in [0, 1].

    ``shape (M,)``, ``centre (M, 2)`` as (x, y), ``half (M,)``: each shape fits in the box of
    half-width ``half``. Coverage is 0.5 minus the signed distance to the outline, clipped,
    which gives one pixel of anti-aliased edge.
    """
    grid = torch.arange(IMAGE_SIZE, dtype=torch.float32) + 0.5  # pixel centres
    dx = grid.view(1, 1, -1) - centre[:, 0].view(-1, 1, 1)  # (M, 1, W)
    dy = grid.view(1, -1, 1) - centre[:, 1].view(-1, 1, 1)  # (M, H, 1)
    h = half.view(-1, 1, 1)
    distance = torch.empty(len(shape), IMAGE_SIZE, IMAGE_SIZE)
    for s in range(len(SHAPES)):
        rows = (shape == s).nonzero().squeeze(1)
        x, y, r = dx[rows], dy[rows], h[rows]
        if SHAPES[s] == "circle":
            distance[rows] = (x * x + y * y).sqrt() - r
        elif SHAPES[s] == "square":
            distance[rows] = torch.maximum(x.abs(), y.abs()) - 0.85 * r
        else:  # triangle: apex (0, -r), base corners (+-r, r)
            distance[rows] = torch.maximum(y - r, (2 * x.abs() - y - r) / 5**0.5)
    return distance.neg_().add_(0.5).clamp_(0.0, 1.0)


def _allowed(only: Combinations | None, exclude: Combinations | None) -> torch.Tensor:
    allowed = torch.ones(len(_ALL_OBJECTS), dtype=torch.bool)
    for name, combos, keep in (("only", only, True), ("exclude", exclude, False)):
        if combos is not None:
            check_type(name, combos, Combinations, "Combinations or None")
            allowed &= combos.mask() if keep else ~combos.mask()
    require(bool(allowed.any()), "only and exclude", "met by some object", "none")
    return allowed


def _draw_objects(counts: torch.Tensor, allowed: torch.Tensor, g: torch.Generator):
    """Rows of :data:`_ALL_OBJECTS` for object 0 ``(N,)`` and object 1 ``(N,)`` (-1: none)."""
    partners = _PARTNERS & allowed.view(1, -1)  # (144, 144)
    first = torch.empty(len(counts), dtype=torch.long)
    for k, candidates in ((1, allowed), (2, allowed & partners.any(1))):
        rows = (counts == k).nonzero().squeeze(1)
        choices = candidates.nonzero().squeeze(1)
        require(len(choices) > 0 or not len(rows), "only and exclude", "met by two objects", "none")
        if len(rows):
            first[rows] = choices[torch.randint(len(choices), (len(rows),), generator=g)]
    second = torch.full_like(first, -1)
    two = (counts == 2).nonzero().squeeze(1)
    if len(two):  # uniform among the allowed objects that fit beside the first
        second[two] = torch.multinomial(partners[first[two]].float(), 1, generator=g).squeeze(1)
    swap = (torch.rand(len(counts), generator=g) < 0.5) & (counts == 2)
    return torch.where(swap, second, first), torch.where(swap, first, second)


def make_scenes(
    n: int,
    seed: int = 0,
    *,
    num_objects: int | None = None,
    only: Combinations | None = None,
    exclude: Combinations | None = None,
) -> Scenes:
    """Draw ``n`` scenes, the same ones for the same arguments.

    ``num_objects``: 1, 2, or None for a fair coin per scene. ``only`` / ``exclude``: every object's
    combination of the given attributes must be in / must not be in the set (see
    :func:`~mmlib.data.world.split_combinations`). Returns :class:`Scenes` with images
    ``(n, 3, 32, 32) float``.
    """
    check_int("n", n, minimum=1)
    check_int("seed", seed, minimum=0)
    if num_objects is not None:
        check_int("num_objects", num_objects)
        check_choice("num_objects", num_objects, (1, 2, None))
    allowed = _allowed(only, exclude)
    g = torch.Generator().manual_seed(seed)

    if num_objects is None:
        counts = torch.randint(1, 3, (n,), generator=g)
    else:
        counts = torch.full((n,), num_objects, dtype=torch.long)
    first, second = _draw_objects(counts, allowed, g)
    two = (counts == 2).nonzero().squeeze(1)
    attributes = torch.full((n, 2, 4), -1, dtype=torch.long)
    attributes[:, 0] = _ALL_OBJECTS[first]
    attributes[two, 1] = _ALL_OBJECTS[second[two]]

    def jitter(size, amount):
        return (torch.rand(size, generator=g) * 2 - 1) * amount

    safe = attributes.clamp(min=0)  # (n, 2, 4): absent objects drawn as row 0 and then dropped
    centres = _CENTRE[safe[..., 3]] + jitter((n, 2, 2), _POSITION_JITTER)
    half = _HALF[safe[..., 2]] + jitter((n, 2), _SIZE_JITTER)
    rgb = (_RGB[safe[..., 1]] + jitter((n, 2, 3), _COLOUR_JITTER)).clamp(0.0, 1.0)
    first_cover = _coverage(safe[:, 0, 0], centres[:, 0], half[:, 0]).unsqueeze(1)
    images = first_cover * rgb[:, 0].view(n, 3, 1, 1)
    second_cover = _coverage(safe[two, 1, 0], centres[two, 1], half[two, 1]).unsqueeze(1)
    images[two] += second_cover * rgb[two, 1].view(-1, 3, 1, 1)  # objects never overlap
    centres[counts == 1, 1] = -1.0

    u = torch.rand(n, 6, generator=g).tolist()
    relations, captions, qa = [], [], []
    for objects, count, draws in zip(attributes.tolist(), counts.tolist(), u, strict=True):
        objects = objects[:count]
        relation = -1
        if count == 2:
            held = _TRUE_RELATIONS[objects[0][3]][objects[1][3]]
            relation = held[int(draws[5] * len(held))]
        relations.append(relation)
        captions.append(_caption(objects, relation))
        qa.append(_questions(objects, draws))
    return Scenes(
        images=images,
        attributes=attributes,
        num_objects=counts,
        relations=torch.tensor(relations, dtype=torch.long),
        centres=centres,
        captions=captions,
        qa=qa,
    )


def _check_scenes(name: str, scenes: object) -> Scenes:
    return check_type(name, scenes, Scenes, "Scenes (from make_scenes)")


def centre_objects(scenes: Scenes, size: int = 16) -> Scenes:
    """One-object scenes with the object moved to the middle and the image cropped to the
    central ``size x size`` pixels; captions no longer name a position ("a small red circle").

    Each image is shifted by whole pixels (its black background wraps around), so the object's
    centre lands within half a pixel of the image centre; every object fits a 16x16 crop. In the
    result ``images`` are ``(N, 3, size, size)``, ``attributes[:, 0, 3]`` (the position) and
    ``relations`` are -1, ``centres`` are in the crop's pixels, and ``qa`` is empty (the old
    questions may ask about positions).
    """
    _check_scenes("scenes", scenes)
    check_int("size", size, minimum=12)
    require(size <= IMAGE_SIZE and size % 2 == 0, "size", f"even and at most {IMAGE_SIZE}", size)
    require(bool((scenes.num_objects == 1).all()), "scenes", "one-object scenes", "two objects")
    n, full, offset = len(scenes), IMAGE_SIZE, (IMAGE_SIZE - size) // 2
    shift = (full / 2 - scenes.centres[:, 0]).round().long()  # (N, 2) whole-pixel (dx, dy)
    pixels = torch.arange(offset, offset + size)
    rows = (pixels.view(1, -1) - shift[:, 1:2]) % full  # (N, size): source row of each row
    cols = (pixels.view(1, -1) - shift[:, 0:1]) % full  # (N, size)
    images = scenes.images[
        torch.arange(n).view(n, 1, 1, 1),
        torch.arange(3).view(1, 3, 1, 1),
        rows.view(n, 1, size, 1),
        cols.view(n, 1, 1, size),
    ]  # (N, 3, size, size)
    attributes = scenes.attributes.clone()
    attributes[:, 0, 3] = -1
    centres = scenes.centres.clone()
    centres[:, 0] += shift.float() - offset
    captions = [
        f"a {SIZES[size_]} {COLOURS[colour]} {SHAPES[shape]}"
        for shape, colour, size_ in attributes[:, 0, :3].tolist()
    ]
    return Scenes(
        images=images,
        attributes=attributes,
        num_objects=scenes.num_objects.clone(),
        relations=torch.full_like(scenes.relations, -1),
        centres=centres,
        captions=captions,
        qa=[[] for _ in range(n)],
    )

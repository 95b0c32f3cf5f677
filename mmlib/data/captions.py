"""Captions of the shapes world, written and read back.

:func:`captions_for` writes the caption of each scene ("a small red circle left of a large blue
square", "a large green triangle at the top"); :func:`~mmlib.data.reading.parse_caption` reads one
back into its objects and their place or relation, which is how generated captions are scored.
"""

from __future__ import annotations

import torch

from mmlib.data.world import (
    _KEYS,
    _TRUE_RELATIONS,
    _WHERE,
    ATTRIBUTES,
    COLOURS,
    POSITIONS,
    RELATIONS,
    SHAPES,
    SIZES,
)
from mmlib.validate import check_tensor, require

__all__ = ["captions_for", "object_captions"]


def _phrase(obj: list[int]) -> str:
    return f"{SIZES[obj[2]]} {COLOURS[obj[1]]} {SHAPES[obj[0]]}"


def _caption(objects: list[list[int]], relation: int) -> str:
    if len(objects) == 1:
        return f"a {_phrase(objects[0])} {_WHERE[POSITIONS[objects[0][3]]]}"
    return f"a {_phrase(objects[0])} {RELATIONS[relation]} a {_phrase(objects[1])}"


def _true_captions(objects: list[list[int]]) -> set[str]:
    """Every caption that is true of the scene: each object's own ("a small red circle on the
    left" is true of a scene that also holds a square) and, for two objects, both orders with
    every relation that holds."""
    true = {_caption([obj], -1) for obj in objects}
    if len(objects) == 2:
        for a, b in ((0, 1), (1, 0)):
            for r in _TRUE_RELATIONS[objects[a][3]][objects[b][3]]:
                true.add(_caption([objects[a], objects[b]], r))
    return true


def captions_for(
    attributes: torch.Tensor, num_objects: torch.Tensor, relations: torch.Tensor
) -> list[str]:
    """The caption of each scene from ``attributes (N, 2, 4)``, ``num_objects (N,)`` and
    ``relations (N,)``, as in :class:`~mmlib.data.scenes.Scenes`."""
    check_tensor("attributes", attributes, dtype="integer", shape=(None, 2, 4))
    check_tensor("num_objects", num_objects, dtype="integer", shape=(len(attributes),))
    check_tensor("relations", relations, dtype="integer", shape=(len(attributes),))
    counts = num_objects.unique().tolist()
    require(set(counts) <= {1, 2}, "num_objects", "1 or 2 per scene", counts)
    present = torch.arange(2).view(1, 2) < num_objects.view(-1, 1)  # (N, 2)
    sizes = torch.tensor([len(v) for v in ATTRIBUTES.values()])
    ok = ((attributes >= 0) & (attributes < sizes)).all(-1)[present]
    require(bool(ok.all()), "attributes", "indices into ATTRIBUTES", "an index out of range")
    asked = relations[num_objects == 2].unique().tolist()
    require(all(0 <= r < len(RELATIONS) for r in asked), "relations", "indices of RELATIONS", asked)
    return [
        _caption(objects[:count], relation)
        for objects, count, relation in zip(
            attributes.tolist(), num_objects.tolist(), relations.tolist(), strict=True
        )
    ]


def object_captions() -> tuple[torch.Tensor, list[str]]:
    """Every single-object caption: ``(attributes (144, 4) int64, captions)``.

    One row per shape, colour, size and position (the columns of
    :data:`~mmlib.data.world.ATTRIBUTES`, in that order), e.g. ``[0, 0, 0, 0]`` and "a small red
    circle on the left": the prompts that zero-shot classification compares an image with.
    """
    objects = torch.cartesian_prod(*(torch.arange(len(v)) for v in ATTRIBUTES.values()))
    captions = captions_for(
        torch.stack([objects, torch.full_like(objects, -1)], dim=1),  # no second object
        torch.ones(len(objects), dtype=torch.long),
        torch.full((len(objects),), -1),
    )
    return objects, captions


def _change_one_attribute(objects: list[list[int]], relation: int, u: list[float]):
    """The caption with exactly one thing changed: one attribute of one object, the position
    (one object) or the relation (two objects) turned to its opposite."""
    objects = [list(o) for o in objects]
    what = int(u[0] * 4)
    if what < 3:
        row = int(u[1] * len(objects))
        choices = len(ATTRIBUTES[_KEYS[what]])
        objects[row][what] = (objects[row][what] + 1 + int(u[2] * (choices - 1))) % choices
    elif len(objects) == 1:
        objects[0][3] = (objects[0][3] + 1 + int(u[2] * 3)) % 4
    else:
        relation ^= 1  # left of <-> right of, above <-> below
    return _caption(objects, relation)

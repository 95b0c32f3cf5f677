"""A small reader of the shapes world, for its tests: captions and answers are checked by this
code, against the attributes and the objects' centres, not by the code that wrote them."""

import re

import torch

from mmlib.data.scenes import Scenes
from mmlib.data.world import ATTRIBUTES, COLOURS, SHAPES, SIZES

WHERE = {"on the left": "left", "on the right": "right", "at the top": "top"}
WHERE["at the bottom"] = "bottom"
OBJECT = r"(small|large) (\w+) (circle|square|triangle)"
ONE = re.compile(rf"^a {OBJECT} (on the left|on the right|at the top|at the bottom)$")
TWO = re.compile(rf"^a {OBJECT} (left of|right of|above|below) a {OBJECT}$")
CLEAR = 4.5  # centres closer than 1.5 px along an axis are "level"; related ones >= 7.5 px apart


def objects_of(scene: Scenes, i: int) -> list[tuple[str, str, str, str]]:
    """The objects of scene i by name: (shape, colour, size, position)."""
    rows = scene.attributes[i, : int(scene.num_objects[i])].tolist()
    return [tuple(ATTRIBUTES[k][v] for k, v in zip(ATTRIBUTES, row, strict=True)) for row in rows]


def parse(caption: str):
    """(objects as (shape, colour, size) or (shape, colour, size, position), relation or None)."""
    if m := ONE.match(caption):
        size, colour, shape, where = m.groups()
        return [(shape, colour, size, WHERE[where])], None
    m = TWO.match(caption)
    assert m, f"caption does not follow a template: {caption!r}"
    s0, c0, sh0, relation, s1, c1, sh1 = m.groups()
    return [(sh0, c0, s0), (sh1, c1, s1)], relation


def holds(relation: str, a: torch.Tensor, b: torch.Tensor) -> bool:
    """Does ``relation`` hold of centre a (x, y) towards centre b? y grows downwards."""
    dx, dy = float(b[0] - a[0]), float(b[1] - a[1])
    return {"left of": dx > CLEAR, "right of": -dx > CLEAR, "above": dy > CLEAR}.get(
        relation, -dy > CLEAR
    )


def caption_is_true(caption: str, scene: Scenes, i: int) -> bool:
    described, relation = parse(caption)
    objects = objects_of(scene, i)
    if relation is None:
        return described[0] in objects
    centres = scene.centres[i]
    return any(
        objects[a][:3] == described[0]
        and objects[b][:3] == described[1]
        and holds(relation, centres[a], centres[b])
        for a in range(len(objects))
        for b in range(len(objects))
        if a != b
    )


def resolve(reference: str, objects) -> int:
    """Index of the one object that 'the small red circle' / 'the red object' names."""
    words = reference.split()
    assert words[0] == "the"
    kinds = {**dict.fromkeys(SHAPES, 0), **dict.fromkeys(COLOURS, 1), **dict.fromkeys(SIZES, 2)}
    wanted = [(kinds[w], w) for w in words[1:] if w != "object"]
    matches = [k for k, obj in enumerate(objects) if all(obj[c] == w for c, w in wanted)]
    assert len(matches) == 1, f"{reference!r} does not single out one of {objects}"
    return matches[0]

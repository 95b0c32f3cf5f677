"""The shapes world: procedural scenes of coloured circles, squares and triangles.

Each scene is a 32x32 RGB image with one or two objects, the attributes that made it, a caption
("a small red circle left of a large blue square") and question-answer pairs ("what colour is
the circle?" -> "red"). The pictures are drawn with tensor masks over the pixel grid, so 10,000
scenes take about a second, and the same seed always gives the same scenes.

Two objects never overlap: the second object is drawn among those that fit beside the first
whatever the jitter. A relation ("left of", "above", ...) is only ever stated or asked along an
axis where the two positions are 9.5 pixels apart, so it holds by at least 8 pixels between the
objects' centres, whatever the jitter.
"""

from __future__ import annotations

import functools
import operator
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from mmlib.validate import check_choice, check_float, check_int, check_tensor, describe

__all__ = [
    "ANSWERS",
    "ATTRIBUTES",
    "COLOURS",
    "IMAGE_SIZE",
    "POSITIONS",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "Combinations",
    "Scenes",
    "ShapesDataset",
    "caption_match",
    "captions_for",
    "image_grid",
    "make_scenes",
    "object_captions",
    "qa_examples",
    "show_scenes",
    "split_combinations",
]

IMAGE_SIZE = 32
SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow", "purple", "cyan")
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom")
ATTRIBUTES = {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "position": POSITIONS}
RELATIONS = ("left of", "right of", "above", "below")  # how row 0 stands to row 1
_NUMBERS = ("zero", "one", "two")
ANSWERS = ("no", "yes", "one", "two", *SHAPES, *COLOURS, *SIZES, *POSITIONS)  # one word each

_KEYS = tuple(ATTRIBUTES)  # column order of Scenes.attributes: shape, colour, size, position
_WHERE = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
}
_RGB = torch.tensor(
    [
        [0.95, 0.15, 0.15],  # red
        [0.15, 0.80, 0.20],  # green
        [0.20, 0.35, 1.00],  # blue
        [0.95, 0.90, 0.15],  # yellow
        [0.70, 0.25, 0.90],  # purple
        [0.15, 0.90, 0.90],  # cyan
    ]
)
_CENTRE = torch.tensor([[6.5, 16.0], [25.5, 16.0], [16.0, 6.5], [16.0, 25.5]])  # (x, y)
_HALF = torch.tensor([3.25, 5.25])  # half-width of the box each size of shape fits in
_POSITION_JITTER, _SIZE_JITTER, _COLOUR_JITTER = 0.75, 0.25, 0.05
_GAP = 1.0  # the least gap between two objects' boxes: their soft edges never meet
_APART = 9.0  # positions this far apart along x (or y) make "left of" (or "above") defined


def _relations_table() -> list[list[tuple[int, ...]]]:
    """``table[a][b]``: the relations that hold of position ``a`` towards position ``b``."""
    table = []
    for xa, ya in _CENTRE.tolist():
        row = []
        for xb, yb in _CENTRE.tolist():
            held = ()
            if abs(xb - xa) >= _APART:
                held += (0,) if xa < xb else (1,)
            if abs(yb - ya) >= _APART:
                held += (2,) if ya < yb else (3,)  # y grows downwards
            row.append(held)
        table.append(row)
    return table


_TRUE_RELATIONS = _relations_table()
# every object there can be: (144, 4) rows of [shape, colour, size, position]
_ALL_OBJECTS = torch.cartesian_prod(*(torch.arange(len(v)) for v in ATTRIBUTES.values()))


def _partners() -> torch.Tensor:
    """``(144, 144)`` bool: object j fits beside object i for every jitter, without touching."""
    extent = _HALF + _SIZE_JITTER  # (2,) largest half-width per size
    need = extent.view(2, 1, 1, 1, 1) + extent.view(1, 1, 2, 1, 1) + _GAP
    distance = (_CENTRE.view(4, 1, 2) - _CENTRE.view(1, 4, 2)).abs() - 2 * _POSITION_JITTER
    fits = (distance.view(1, 4, 1, 4, 2) >= need).any(-1)  # (size_i, pos_i, size_j, pos_j)
    size, position = _ALL_OBJECTS[:, 2], _ALL_OBJECTS[:, 3]
    return fits[size.view(-1, 1), position.view(-1, 1), size.view(1, -1), position.view(1, -1)]


_PARTNERS = _partners()


@dataclass(frozen=True)
class Combinations:
    """A set of attribute combinations, e.g. ``keys=("shape", "colour")`` and
    ``values={("circle", "red"), ("square", "blue")}``; pass it to :func:`make_scenes` as
    ``only=`` or ``exclude=``."""

    keys: tuple[str, ...]
    values: frozenset[tuple[str, ...]]

    def __post_init__(self):
        keys = self.keys
        if isinstance(keys, str) or not isinstance(keys, (tuple, list)) or not keys:
            raise TypeError(f"keys must be a non-empty tuple of attribute names, got {keys!r}")
        for key in keys:
            check_choice("keys", key, ATTRIBUTES)
        if len(set(keys)) != len(keys):
            raise ValueError(f"keys must not repeat an attribute, got {keys!r}")
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Iterable):
            raise TypeError(f"values must be a set of tuples, got {describe(self.values)}")
        values = frozenset(tuple(v) if isinstance(v, (tuple, list)) else v for v in self.values)
        for value in values:
            if not isinstance(value, tuple) or len(value) != len(keys):
                raise ValueError(f"values must hold tuples of {len(keys)} names, got {value!r}")
            for key, name in zip(keys, value, strict=True):
                if name not in ATTRIBUTES[key]:
                    raise ValueError(f"values must name a {key} in {ATTRIBUTES[key]}, got {name!r}")
        object.__setattr__(self, "keys", tuple(keys))
        object.__setattr__(self, "values", values)

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):
        order = [ATTRIBUTES[k] for k in self.keys]
        return iter(
            sorted(self.values, key=lambda v: [o.index(x) for o, x in zip(order, v, strict=True)])
        )

    def __contains__(self, value: object) -> bool:
        return value in self.values

    def mask(self) -> torch.Tensor:
        """``(144,)`` bool over every object (shape, colour, size, position): True if it is in."""
        columns = [_KEYS.index(k) for k in self.keys]
        return torch.tensor(
            [
                tuple(
                    ATTRIBUTES[k][i] for k, i in zip(self.keys, row[columns].tolist(), strict=True)
                )
                in self.values
                for row in _ALL_OBJECTS
            ]
        )


def split_combinations(
    keys: tuple[str, ...] = ("shape", "colour"), held_out_fraction: float = 0.25, seed: int = 0
) -> tuple[Combinations, Combinations]:
    """Split every combination of ``keys`` into ``(seen, held_out)``, deterministically.

    Every single value (each shape, each colour) stays in some seen combination, so a model
    trained on ``seen`` has met all the parts and is tested on new *combinations* of them.
    """
    if isinstance(keys, str) or not isinstance(keys, (tuple, list)) or len(keys) < 2:
        raise TypeError(f"keys must be a tuple of two or more attribute names, got {keys!r}")
    for key in keys:
        check_choice("keys", key, ATTRIBUTES)
    if len(set(keys)) != len(keys):
        raise ValueError(f"keys must not repeat an attribute, got {keys!r}")
    check_float("held_out_fraction", held_out_fraction, low=0.0, high=1.0)
    check_int("seed", seed, minimum=0)
    combos = list(torch.cartesian_prod(*(torch.arange(len(ATTRIBUTES[k])) for k in keys)).tolist())
    wanted = max(1, round(held_out_fraction * len(combos)))
    order = torch.randperm(len(combos), generator=torch.Generator().manual_seed(seed)).tolist()
    seen, held_out = set(map(tuple, combos)), set()
    for i in order:
        if len(held_out) == wanted:
            break
        rest = seen - {tuple(combos[i])}
        if all({c[a] for c in rest} == set(range(len(ATTRIBUTES[k]))) for a, k in enumerate(keys)):
            seen, held_out = rest, held_out | {tuple(combos[i])}
    if len(held_out) < wanted or held_out_fraction == 0.0:
        raise ValueError(
            f"held_out_fraction must leave every {'/'.join(keys)} value in a seen combination "
            f"and hold out at least one, got {held_out_fraction}"
        )

    def named(indices):
        return {tuple(ATTRIBUTES[k][i] for k, i in zip(keys, c, strict=True)) for c in indices}

    return Combinations(tuple(keys), named(seen)), Combinations(tuple(keys), named(held_out))


@dataclass
class Scenes:
    """A batch of N scenes. Index it with an int, a slice or an index tensor to get ``Scenes``.

    - ``images``: ``(N, 3, 32, 32) float`` in [0, 1]
    - ``attributes``: ``(N, 2, 4) int64``, per object [shape, colour, size, position] indices
      into the vocabularies of :data:`ATTRIBUTES`; the second row is -1 when there is one object
    - ``num_objects``: ``(N,) int64``, 1 or 2
    - ``relations``: ``(N,) int64``, index into :data:`RELATIONS` of how object 0 stands to
      object 1 in the caption ("a <object 0> left of a <object 1>"), -1 for one object
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
    if isinstance(index, bool):
        raise TypeError(f"{name} must be an int, a slice or an index tensor, got {index!r}")
    if isinstance(index, int):
        if not -length <= index < length:
            raise IndexError(f"{name} must be in [{-length}, {length}), got {index}")
        return torch.tensor([index % length])
    if isinstance(index, slice):
        return torch.arange(length)[index]
    if isinstance(index, list):
        index = torch.tensor(index, dtype=torch.long) if index else torch.zeros(0, dtype=torch.long)
    if isinstance(index, torch.Tensor) and index.ndim == 1:
        if index.dtype == torch.bool:
            check_tensor(name, index, shape=(length,), allow_empty=True)
            return index.nonzero().squeeze(1)
        check_tensor(name, index, dtype="integer", allow_empty=True)
        if len(index) and not (-length <= int(index.min()) and int(index.max()) < length):
            raise IndexError(
                f"{name} must hold rows in [{-length}, {length}), got {index.tolist()}"
            )
        return index.long() % max(length, 1)
    raise TypeError(f"{name} must be an int, a slice or a 1-D index tensor, got {describe(index)}")


def _item_index(i: object, length: int) -> int:
    """A single item number for a Dataset: any int-like (Python, NumPy, 0-d tensor), not bool."""
    if isinstance(i, bool) or not hasattr(type(i), "__index__"):
        raise TypeError(f"i must be an int, got {describe(i)}")
    i = operator.index(i)
    if not -length <= i < length:
        raise IndexError(f"i must be in [{-length}, {length}), got {i}")
    return i


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
    ``relations (N,)``, as in :class:`Scenes`."""
    _check_structure(attributes, num_objects, relations)
    return [
        _caption(objects[:count], relation)
        for objects, count, relation in zip(
            attributes.tolist(), num_objects.tolist(), relations.tolist(), strict=True
        )
    ]


def object_captions() -> tuple[torch.Tensor, list[str]]:
    """Every single-object caption: ``(attributes (144, 4) int64, captions)``.

    One row per shape, colour, size and position (the columns of :data:`ATTRIBUTES`, in that
    order), e.g. ``[0, 0, 0, 0]`` and "a small red circle on the left": the prompts that
    zero-shot classification compares an image with.
    """
    objects = torch.cartesian_prod(*(torch.arange(len(v)) for v in ATTRIBUTES.values()))
    captions = captions_for(
        torch.stack([objects, torch.full_like(objects, -1)], dim=1),  # no second object
        torch.ones(len(objects), dtype=torch.long),
        torch.full((len(objects),), -1),
    )
    return objects, captions


def _check_structure(attributes, num_objects, relations) -> None:
    check_tensor("attributes", attributes, ndim=3, dtype="integer", shape=(None, 2, 4))
    check_tensor("num_objects", num_objects, ndim=1, dtype="integer")
    check_tensor("relations", relations, ndim=1, dtype="integer")
    if not len(attributes) == len(num_objects) == len(relations):
        raise ValueError(
            f"attributes, num_objects and relations must have the same length, got "
            f"{len(attributes)}, {len(num_objects)} and {len(relations)}"
        )
    if not bool(((num_objects == 1) | (num_objects == 2)).all()):
        raise ValueError(f"num_objects must hold 1 or 2, got {num_objects.unique().tolist()}")
    sizes = torch.tensor([len(v) for v in ATTRIBUTES.values()])
    present = torch.arange(2).view(1, 2) < num_objects.view(-1, 1)  # (N, 2)
    ok = ((attributes >= 0) & (attributes < sizes)).all(-1)
    if not bool(ok[present].all()):
        raise ValueError("attributes must hold valid indices into ATTRIBUTES for each object")
    two = num_objects == 2
    if not bool(((relations[two] >= 0) & (relations[two] < len(RELATIONS))).all()):
        got = relations[two].unique().tolist()
        raise ValueError(f"relations must index RELATIONS for two objects, got {got}")


def _reference(looks: tuple[tuple[int, int, int], ...], i: int, keys: tuple[int, ...]):
    """'the small circle' if these attribute columns single out object i, else None."""
    mine = [looks[i][k] for k in keys]
    if any([o[k] for k in keys] == mine for j, o in enumerate(looks) if j != i):
        return None
    names = [ATTRIBUTES[_KEYS[k]][looks[i][k]] for k in (2, 1, 0) if k in keys]
    return "the " + " ".join(names if 0 in keys else [*names, "object"])


_ASK = (  # question, answer column, references to try (attribute columns), shortest first
    ("what colour is {}?", 1, ((0,), (2, 0))),
    ("what shape is {}?", 0, ((1,), (2,), (2, 1))),
    ("what size is {}?", 2, ((0,), (1, 0))),
    ("where is {}?", 3, ((0,), (1, 0), (2, 0), (2, 1, 0))),
)


@functools.cache
def _askable(looks: tuple[tuple[int, int, int], ...]) -> tuple[list[tuple[str, int]], ...]:
    """Per object (shape, colour, size): the questions that single it out, as (question,
    answer column), and last its shortest name ("the red circle") or None."""
    per_object = []
    for i in range(len(looks)):
        asked = []
        for question, column, options in _ASK:
            ref = next((r for keys in options if (r := _reference(looks, i, keys))), None)
            if ref is not None:
                asked.append((question.format(ref), column))
        per_object.append((asked, ref))  # ref: the name used by "where is ...?"
    return tuple(per_object)


_COLOUR_SHAPE = [(c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES))]


def _questions(objects: list[list[int]], u: list[float]) -> list[tuple[str, str]]:
    """Question-answer pairs for one scene; ``u`` holds uniform numbers for the random picks."""
    qa = [("how many shapes?", _NUMBERS[len(objects)])]
    askable = _askable(tuple(tuple(obj[:3]) for obj in objects))
    for obj, (asked, _) in zip(objects, askable, strict=True):
        qa += [(question, ATTRIBUTES[_KEYS[c]][obj[c]]) for question, c in asked]
    if len(objects) == 2 and askable[0][1] and askable[1][1]:
        a = int(u[0] < 0.5)
        b = 1 - a
        held = _TRUE_RELATIONS[objects[a][3]][objects[b][3]]
        axis = held[int(u[1] * len(held))] // 2  # 0: left/right, 1: above/below
        asked = 2 * axis + int(u[2] < 0.5)
        question = f"is {askable[a][1]} {RELATIONS[asked]} {askable[b][1]}?"
        qa.append((question, ANSWERS[int(asked in held)]))
    present = sorted({(obj[1], obj[0]) for obj in objects})
    if u[3] < 0.5:
        colour, shape = present[int(u[4] * len(present))]
    else:
        absent = [pair for pair in _COLOUR_SHAPE if pair not in present]
        colour, shape = absent[int(u[4] * len(absent))]
    qa.append((f"is there a {COLOURS[colour]} {SHAPES[shape]}?", ANSWERS[int(u[3] < 0.5)]))
    return qa


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
            if not isinstance(combos, Combinations):
                raise TypeError(f"{name} must be a Combinations or None, got {describe(combos)}")
            allowed &= combos.mask() if keep else ~combos.mask()
    if not bool(allowed.any()):
        raise ValueError("only and exclude must leave at least one object to draw, got none")
    return allowed


def _draw_objects(counts: torch.Tensor, allowed: torch.Tensor, g: torch.Generator):
    """Rows of :data:`_ALL_OBJECTS` for object 0 ``(N,)`` and object 1 ``(N,)`` (-1: none)."""
    partners = _PARTNERS & allowed.view(1, -1)  # (144, 144)
    first = torch.empty(len(counts), dtype=torch.long)
    for k, candidates in ((1, allowed), (2, allowed & partners.any(1))):
        rows = (counts == k).nonzero().squeeze(1)
        choices = candidates.nonzero().squeeze(1)
        if len(rows) and not len(choices):
            raise ValueError("only and exclude must leave two objects that fit side by side")
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

    ``num_objects``: 1, 2, or None for a fair coin per scene. ``only`` / ``exclude``: every
    object's combination of the given attributes must be in / must not be in the set (see
    :func:`split_combinations`). Returns :class:`Scenes` with images ``(n, 3, 32, 32) float``.
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


def qa_examples(scenes: Scenes) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """Flatten the questions of ``scenes`` for visual question answering.

    Returns ``scene_index (M,) int64`` (which image), ``questions`` (M strings) and
    ``answers (M,) int64``, indices into :data:`ANSWERS`.
    """
    _check_scenes("scenes", scenes)
    index, questions, answers = [], [], []
    for i, pairs in enumerate(scenes.qa):
        for question, answer in pairs:
            index.append(i)
            questions.append(question)
            answers.append(ANSWERS.index(answer))
    return torch.tensor(index, dtype=torch.long), questions, torch.tensor(answers)


def _check_scenes(name: str, scenes: object) -> Scenes:
    if not isinstance(scenes, Scenes):
        raise TypeError(f"{name} must be a Scenes (from make_scenes), got {describe(scenes)}")
    return scenes


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


def caption_match(
    scenes: Scenes, seed: int = 0, hard: bool = False
) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """The task "is this caption true of this image?".

    Returns ``images (N, 3, 32, 32)`` (those of ``scenes``, in order), N captions and
    ``labels (N,) int64``: 1 for the scene's own caption, 0 for a false one. Exactly ``N // 2``
    captions, at random places, are false. A false caption comes from another scene
    (``hard=False``), or is the scene's own with exactly one attribute, position or relation
    changed (``hard=True``); either way it is checked to be false of the image.
    """
    _check_scenes("scenes", scenes)
    check_int("seed", seed, minimum=0)
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {describe(hard)}")
    g = torch.Generator().manual_seed(seed)
    n = len(scenes)
    negative = torch.randperm(n, generator=g)[: n // 2]
    labels = torch.ones(n, dtype=torch.long)
    labels[negative] = 0
    captions = list(scenes.captions)
    objects = [
        o[:k] for o, k in zip(scenes.attributes.tolist(), scenes.num_objects.tolist(), strict=True)
    ]
    relations = scenes.relations.tolist()
    for i in negative.tolist():
        true = _true_captions(objects[i])
        for _ in range(100):
            u = torch.rand(3, generator=g).tolist()
            if hard:
                candidate = _change_one_attribute(objects[i], relations[i], u)
            else:
                candidate = scenes.captions[(i + 1 + int(u[0] * (n - 1))) % n]
            if candidate not in true:
                captions[i] = candidate
                break
        else:
            raise ValueError(
                "scenes must hold captions that are false of some images to make negatives, "
                f"found none for scene {i}: {scenes.captions[i]!r}"
            )
    return scenes.images, captions, labels


class ShapesDataset(Dataset):
    """:class:`Scenes` as a ``torch.utils.data.Dataset``.

    An item is a dict: ``image (3, 32, 32) float``, ``caption`` str, ``attributes (2, 4) int64``
    and ``num_objects`` () int64; the default ``DataLoader`` collate batches them.
    """

    def __init__(self, scenes: Scenes):
        self.scenes = _check_scenes("scenes", scenes)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> dict:
        i = _item_index(i, len(self))
        return {
            "image": self.scenes.images[i],
            "caption": self.scenes.captions[i],
            "attributes": self.scenes.attributes[i],
            "num_objects": self.scenes.num_objects[i],
        }


def image_grid(images: torch.Tensor, columns: int, pad: int = 2, pad_value: float = 0.3):
    """Tile images ``(B, C, H, W)`` into one picture ``(C, rows * (H + pad) + pad,
    columns * (W + pad) + pad)``, ``pad`` pixels of ``pad_value`` around each image; at most
    ``B`` columns.

    ``torchvision.utils.make_grid`` does the same (``tests/test_shapes.py`` checks that they
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

    ``scenes_or_images``: :class:`Scenes` or ``Digits`` (their captions are used unless
    ``captions`` is given) or images ``(B, 3, H, W) float`` in [0, 1]. Returns the Figure.
    Captions are set at 8 pt or more once the figure is scaled to the page width
    (:mod:`mmlib.plotting`), wrapped to the width of their image, with room left under it.
    """
    import matplotlib.pyplot as plt

    from mmlib.plotting import MIN_POINTS, PAGE_WIDTH_IN

    if hasattr(scenes_or_images, "images") and hasattr(scenes_or_images, "captions"):
        images = scenes_or_images.images  # Scenes, or Digits from mmlib.digits
        captions = scenes_or_images.captions if captions is None else captions
    else:
        images = check_tensor("scenes_or_images", scenes_or_images, ndim=4, dtype="float")
        if images.shape[1] != 3:
            raise ValueError(f"scenes_or_images must be (B, 3, H, W), got {describe(images)}")
    check_int("nrow", nrow, minimum=1)
    if captions is not None:
        if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
            raise TypeError(f"captions must be a list of str, got {describe(captions)}")
        if len(captions) != len(images):
            raise ValueError(f"captions must have {len(images)} entries, got {len(captions)}")
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

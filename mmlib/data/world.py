"""The shapes world's vocabulary and geometry: what can stand where, and which relations hold.

Three shapes, six colours, two sizes and four places (:data:`ATTRIBUTES`) make the 144 objects
of the world. Two objects never overlap: the second object is drawn among those that fit beside
the first whatever the jitter (``_PARTNERS``). A relation ("left of", "above", ...) is only
ever stated or asked along an axis where the two places are 9.5 pixels apart, so it holds by at
least 8 pixels between the objects' centres, whatever the jitter (``_TRUE_RELATIONS``).
:class:`Combinations` names a set of attribute combinations, for held-out splits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from mmlib.validate import check_float, check_int, describe, require

__all__ = [
    "ANSWERS",
    "ATTRIBUTES",
    "COLOURS",
    "Combinations",
    "IMAGE_SIZE",
    "POSITIONS",
    "RELATIONS",
    "SHAPES",
    "SIZES",
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


def _check_keys(keys: object, least: int) -> tuple[str, ...]:
    """``keys`` as a tuple of ``least`` or more distinct attribute names."""
    if isinstance(keys, str) or not isinstance(keys, (tuple, list)) or len(keys) < least:
        raise TypeError(f"keys must be a tuple of {least}+ attribute names, got {keys!r}")
    ok = all(key in _KEYS for key in keys) and len(set(keys)) == len(keys)
    require(ok, "keys", f"distinct names from {_KEYS}", repr(keys))
    return tuple(keys)


def _names_of(keys: tuple[str, ...], value: object) -> bool:
    """Is ``value`` a tuple naming one value of each of ``keys``?"""
    return (
        isinstance(value, tuple)
        and len(value) == len(keys)
        and all(name in ATTRIBUTES[k] for k, name in zip(keys, value, strict=True))
    )


@dataclass(frozen=True)
class Combinations:
    """A set of attribute combinations, e.g. ``keys=("shape", "colour")`` and
    ``values={("circle", "red"), ("square", "blue")}``; pass it to
    :func:`~mmlib.data.scenes.make_scenes` as ``only=`` or ``exclude=``."""

    keys: tuple[str, ...]
    values: frozenset[tuple[str, ...]]

    def __post_init__(self):
        keys = _check_keys(self.keys, 1)
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Iterable):
            raise TypeError(f"values must be a set of tuples, got {describe(self.values)}")
        values = frozenset(tuple(v) if isinstance(v, (tuple, list)) else v for v in self.values)
        bad = [value for value in values if not _names_of(keys, value)]
        require(not bad, "values", f"tuples of {len(keys)} names of {'/'.join(keys)}", bad)
        object.__setattr__(self, "keys", keys)
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
    keys = _check_keys(keys, 2)
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
    fits = held_out_fraction > 0 and len(held_out) == wanted
    require(fits, "held_out_fraction", "> 0 and leave each value seen", held_out_fraction)

    def named(indices):
        return {tuple(ATTRIBUTES[k][i] for k, i in zip(keys, c, strict=True)) for c in indices}

    return Combinations(keys, named(seen)), Combinations(keys, named(held_out))

"""The shapes world's vocabulary and its hold-out splits of attribute combinations."""

import pytest

from mmlib.data.world import (
    ANSWERS,
    ATTRIBUTES,
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    Combinations,
    split_combinations,
)
from tests.bad_input import raises_naming


def test_vocabularies_and_answers():
    assert ATTRIBUTES == {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "position": POSITIONS}
    assert (len(SHAPES), len(COLOURS), len(SIZES), len(POSITIONS)) == (3, 6, 2, 4)
    assert len(set(ANSWERS)) == len(ANSWERS) and all(" " not in a for a in ANSWERS)


def test_held_out_split_covers_every_value_and_is_deterministic():
    seen, held_out = split_combinations(("shape", "colour"), held_out_fraction=0.25, seed=0)
    assert len(held_out) == 4 and len(seen) == 14
    assert not seen.values & held_out.values
    assert {(s, c) for s in SHAPES for c in COLOURS} == seen.values | held_out.values
    assert {s for s, _ in seen} == set(SHAPES) and {c for _, c in seen} == set(COLOURS)
    assert split_combinations(("shape", "colour"), 0.25, seed=0)[1] == held_out
    others = [split_combinations(("shape", "colour"), 0.25, seed=s)[1] for s in range(1, 6)]
    assert any(o != held_out for o in others)
    seen3, held3 = split_combinations(("shape", "colour", "size"), 0.5, seed=1)
    assert len(held3) == 18 and len(seen3) == 18


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: Combinations(("shape", "flavour"), set()), ValueError, "keys"),
        (lambda: Combinations("shape", set()), TypeError, "keys"),
        (lambda: Combinations(("shape",), {("hexagon",)}), ValueError, "values"),
        (lambda: Combinations(("shape",), {("circle", "red")}), ValueError, "values"),
        (lambda: Combinations(("shape",), 5), TypeError, "values"),
        (lambda: Combinations((), set()), TypeError, "keys"),
        (lambda: Combinations(("shape", "shape"), set()), ValueError, "keys"),
        (lambda: Combinations(("shape",), "circle"), TypeError, "values"),
        (lambda: split_combinations(("shape",)), TypeError, "keys"),
        (lambda: split_combinations(("shape", "smell")), ValueError, "keys"),
        (lambda: split_combinations(("shape", "shape")), ValueError, "keys"),
        (lambda: split_combinations(held_out_fraction=0.9), ValueError, "held_out_fraction"),
        (lambda: split_combinations(held_out_fraction=1.5), ValueError, "held_out_fraction"),
        (lambda: split_combinations(held_out_fraction="half"), TypeError, "held_out_fraction"),
        (lambda: split_combinations(seed=None), TypeError, "seed"),
        (lambda: split_combinations(held_out_fraction=0.0), ValueError, "held_out_fraction"),
        (lambda: split_combinations(seed=-1), ValueError, "seed"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, error, name):
    with raises_naming(error, name):
        call()

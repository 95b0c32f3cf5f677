"""Scenes of the shapes world: pictures, what made them, indexing and held-out generation."""

import time

import pytest
import torch

from mmlib.data import world
from mmlib.data.scenes import Scenes, centre_objects, make_scenes
from mmlib.data.world import (
    ATTRIBUTES,
    COLOURS,
    RELATIONS,
    SHAPES,
    Combinations,
    split_combinations,
)
from tests.bad_input import raises_naming
from tests.shapes_reader import caption_is_true, holds, parse


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(400, seed=7)


def test_scene_tensors_have_the_documented_form(scenes):
    n = len(scenes)
    assert n == 400
    assert scenes.images.shape == (n, 3, 32, 32) and scenes.images.dtype == torch.float32
    assert float(scenes.images.min()) >= 0.0 and float(scenes.images.max()) <= 1.0
    assert scenes.attributes.shape == (n, 2, 4) and scenes.attributes.dtype == torch.int64
    assert scenes.num_objects.dtype == torch.int64 and set(scenes.num_objects.tolist()) == {1, 2}
    one = scenes.num_objects == 1
    assert bool((scenes.attributes[one, 1] == -1).all())
    assert bool((scenes.attributes[~one] >= 0).all())
    assert bool((scenes.relations[one] == -1).all())
    assert bool((scenes.relations[~one] >= 0).all())
    assert len(scenes.captions) == len(scenes.qa) == n
    # the pixel under each object's centre is fully covered, in the object's own colour
    for i in range(n):
        for (x, y), colour in zip(
            scenes.centres[i, : scenes.num_objects[i]].long().tolist(),
            scenes.attributes[i, : scenes.num_objects[i], 1].tolist(),
            strict=True,
        ):
            pixel = scenes.images[i, :, y, x]
            distance = (world._RGB - pixel).abs().amax(1)
            assert int(distance.argmin()) == colour and float(distance.min()) <= 0.05 + 1e-6
    # every attribute value occurs
    for column, values in enumerate(ATTRIBUTES.values()):
        assert set(scenes.attributes[:, 0, column].tolist()) == set(range(len(values)))


def test_same_seed_same_scenes_other_seed_other_scenes():
    a, b, c = make_scenes(50, seed=3), make_scenes(50, seed=3), make_scenes(50, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.attributes, b.attributes)
    assert a.captions == b.captions and a.qa == b.qa
    assert not torch.equal(a.images, c.images)
    assert a.captions != c.captions


def test_num_objects_can_be_fixed():
    assert set(make_scenes(30, seed=1, num_objects=1).num_objects.tolist()) == {1}
    assert set(make_scenes(30, seed=1, num_objects=2).num_objects.tolist()) == {2}


def test_relations_hold_between_the_object_centres(scenes):
    two = (scenes.num_objects == 2).nonzero().squeeze(1).tolist()
    assert len(two) > 100
    relations_seen = set()
    for i in two:
        _, relation = parse(scenes.captions[i])
        relations_seen.add(relation)
        a, b = scenes.centres[i]
        assert holds(relation, a, b), (scenes.captions[i], a, b)
        gap = (a - b).abs()
        assert bool(((gap <= 1.5) | (gap >= 7.5)).all())  # no relation is a close call
    assert relations_seen == set(RELATIONS)


def test_centres_match_the_pixels_and_objects_never_overlap(scenes):
    lit = scenes.images.amax(1) > 0  # (N, 32, 32)
    grid = torch.arange(32.0) + 0.5
    largest = world._HALF + world._SIZE_JITTER + 0.5  # the box a shape fits, plus its soft edge
    for i in range(len(scenes)):
        k = int(scenes.num_objects[i])
        centres = scenes.centres[i, :k]
        half = largest[scenes.attributes[i, :k, 2]]
        ys, xs = lit[i].nonzero(as_tuple=True)
        px, py = grid[xs], grid[ys]
        # every lit pixel centre lies in the box of the object whose centre is nearest
        d = (px.view(-1, 1) - centres[:, 0]) ** 2 + (py.view(-1, 1) - centres[:, 1]) ** 2
        owner = d.argmin(1)
        inside = ((px - centres[owner, 0]).abs() <= half[owner] + 0.5) & (
            (py - centres[owner, 1]).abs() <= half[owner] + 0.5
        )
        assert bool(inside.all())
        for j in range(k):  # each object's pixels are centred on its centre
            mine = owner == j
            box_x = (px[mine].min() + px[mine].max()) / 2
            box_y = (py[mine].min() + py[mine].max()) / 2
            assert abs(float(box_x - centres[j, 0])) <= 1.0
            assert abs(float(box_y - centres[j, 1])) <= 1.0
        if k == 2:  # the two boxes are apart along x or along y
            apart = (centres[0] - centres[1]).abs() - half.sum()
            assert float(apart.max()) >= 0.0


def test_seen_only_generation_never_shows_a_held_out_combination():
    seen, held_out = split_combinations(("shape", "colour"), held_out_fraction=0.25, seed=0)

    def pairs(scenes):
        rows = scenes.attributes[scenes.attributes[..., 0] >= 0]
        return {(SHAPES[s], COLOURS[c]) for s, c in rows[:, :2].tolist()}

    train = make_scenes(600, seed=1, only=seen)
    assert pairs(train) == seen.values  # all seen ones occur, no held-out one
    assert pairs(make_scenes(600, seed=1, exclude=held_out)) == seen.values
    test = make_scenes(200, seed=2, only=held_out)
    assert pairs(test) == held_out.values
    for i in range(0, 200, 10):  # held-out captions are still true of their images
        assert caption_is_true(test.captions[i], test, i)
    positions = Combinations(("position",), {("left",), ("right",)})
    two = make_scenes(50, seed=3, num_objects=2, only=positions)
    assert {p for p in two.attributes[..., 3].flatten().tolist()} == {0, 1}


def test_indexing_returns_scenes(scenes):
    assert len(scenes[3]) == 1 and scenes[3].captions == [scenes.captions[3]]
    assert scenes[-1].captions == [scenes.captions[-1]]
    part = scenes[10:20]
    assert isinstance(part, Scenes) and len(part) == 10
    assert torch.equal(part.images, scenes.images[10:20]) and part.qa == scenes.qa[10:20]
    picked = scenes[torch.tensor([5, 1, 5])]
    assert picked.captions == [scenes.captions[k] for k in (5, 1, 5)]
    mask = scenes.num_objects == 2
    assert len(scenes[mask]) == int(mask.sum()) and bool((scenes[mask].num_objects == 2).all())
    assert len(scenes[[0, 2]]) == 2
    with raises_naming(IndexError, "index"):
        scenes[400]


def test_ten_thousand_scenes_are_fast():
    """About 1 s of one core; CPU time, not wall time, so other busy processes do not count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()
        big = make_scenes(10_000, seed=11)
        elapsed = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
    assert len(big) == 10_000
    assert elapsed < 4.0, f"10,000 scenes took {elapsed:.2f} s of CPU time"


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: make_scenes(0), ValueError, "n"),
        (lambda: make_scenes(2.5), TypeError, "n"),
        (lambda: make_scenes(5, seed=-1), ValueError, "seed"),
        (lambda: make_scenes(5, seed="0"), TypeError, "seed"),
        (lambda: make_scenes(5, num_objects=3), ValueError, "num_objects"),
        (lambda: make_scenes(5, num_objects=True), TypeError, "num_objects"),
        (lambda: make_scenes(5, only={("circle", "red")}), TypeError, "only"),
        (lambda: make_scenes(5, exclude="circle"), TypeError, "exclude"),
        (
            lambda: make_scenes(
                5,
                only=Combinations(("shape",), {("circle",)}),
                exclude=Combinations(("shape",), {("circle",)}),
            ),
            ValueError,
            "only and exclude",
        ),
        (
            lambda: make_scenes(5, num_objects=2, only=Combinations(("position",), {("top",)})),
            ValueError,
            "only and exclude",
        ),
        (lambda: make_scenes(3)["a"], TypeError, "index"),
        (lambda: make_scenes(3)[True], TypeError, "index"),
        (lambda: make_scenes(3)[-4], IndexError, "index"),
        (lambda: make_scenes(3)[[0, 9]], IndexError, "index"),
        (lambda: make_scenes(3)[torch.zeros(1, 1, dtype=torch.long)], TypeError, "index"),
        (lambda: make_scenes(3)[torch.tensor([0.5])], TypeError, "index"),
        (lambda: make_scenes(3)[torch.tensor([True])], ValueError, "index"),
        (lambda: make_scenes(3)[torch.tensor([7])], IndexError, "index"),
        (lambda: centre_objects(make_scenes(2, num_objects=1), size=34), ValueError, "size"),
        (lambda: centre_objects(make_scenes(2, num_objects=1), size=10), ValueError, "size"),
        (lambda: centre_objects(make_scenes(2, num_objects=1), size=12.0), TypeError, "size"),
        (lambda: centre_objects(make_scenes(4, num_objects=2)), ValueError, "scenes"),
        (lambda: centre_objects(make_scenes(2).images), TypeError, "scenes"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, error, name):
    with raises_naming(error, name):
        call()

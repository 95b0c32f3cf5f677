"""The shapes world: pictures, captions, questions, hold-out splits and the caption-match task.

Captions and answers are checked by a small reader written here, against the attributes and the
objects' centres, not by the code that wrote them.
"""

import re
import time

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from mmlib.book.figures import image_grid, show_scenes
from mmlib.data import world
from mmlib.data.captions import captions_for, object_captions
from mmlib.data.scenes import Scenes, make_scenes
from mmlib.data.tasks import caption_match, qa_examples
from mmlib.data.world import (
    ANSWERS,
    ATTRIBUTES,
    COLOURS,
    POSITIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    Combinations,
    split_combinations,
)

WHERE = {"on the left": "left", "on the right": "right", "at the top": "top"}
WHERE["at the bottom"] = "bottom"
OBJECT = r"(small|large) (\w+) (circle|square|triangle)"
ONE = re.compile(rf"^a {OBJECT} (on the left|on the right|at the top|at the bottom)$")
TWO = re.compile(rf"^a {OBJECT} (left of|right of|above|below) a {OBJECT}$")
CLEAR = 4.5  # centres closer than 1.5 px along an axis are "level"; related ones >= 7.5 px apart


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(400, seed=7)


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


def test_vocabularies_and_answers():
    assert ATTRIBUTES == {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "position": POSITIONS}
    assert (len(SHAPES), len(COLOURS), len(SIZES), len(POSITIONS)) == (3, 6, 2, 4)
    assert len(set(ANSWERS)) == len(ANSWERS) and all(" " not in a for a in ANSWERS)


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


def test_captions_follow_the_attributes(scenes):
    for i, caption in enumerate(scenes.captions):
        described, relation = parse(caption)
        objects = objects_of(scenes, i)
        assert len(described) == len(objects)
        if relation is None:
            assert described == objects
        else:  # the caption reads "a <object 0> <relation> a <object 1>"
            assert described == [obj[:3] for obj in objects]
            assert relation == RELATIONS[int(scenes.relations[i])]
    assert captions_for(scenes.attributes, scenes.num_objects, scenes.relations) == scenes.captions


def test_object_captions_name_every_single_object():
    objects, captions = object_captions()
    assert objects.shape == (144, 4) and len(set(captions)) == 144
    assert captions[0] == "a small red circle on the left"
    for row, caption in zip(objects.tolist(), captions, strict=True):
        named = tuple(ATTRIBUTES[k][v] for k, v in zip(ATTRIBUTES, row, strict=True))
        assert parse(caption) == ([named], None)


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


def test_questions_are_answered_by_the_attributes(scenes):
    kinds = set()
    for i, pairs in enumerate(scenes.qa):
        objects = objects_of(scenes, i)
        assert pairs[0] == ("how many shapes?", ("one", "two")[len(objects) - 1])
        for question, answer in pairs:
            assert answer in ANSWERS
            kinds.add(question.split()[1])
            if m := re.match(r"^what (colour|shape|size) is (.+)\?$", question):
                column = {"shape": 0, "colour": 1, "size": 2}[m[1]]
                assert objects[resolve(m[2], objects)][column] == answer
            elif m := re.match(r"^where is (.+)\?$", question):
                assert objects[resolve(m[1], objects)][3] == answer
            elif m := re.match(
                r"^is (the .+) (left of|right of|above|below) (the .+)\?$", question
            ):
                a, b = resolve(m[1], objects), resolve(m[3], objects)
                centres = scenes.centres[i]
                opposite = {"left of": "right of", "right of": "left of", "above": "below"}
                if answer == "yes":
                    assert holds(m[2], centres[a], centres[b])
                else:  # a clear "no": the opposite holds
                    assert holds(opposite.get(m[2], "above"), centres[a], centres[b])
            elif m := re.match(r"^is there a (\w+) (\w+)\?$", question):
                present = any(obj[1] == m[1] and obj[0] == m[2] for obj in objects)
                assert answer == ("yes" if present else "no")
            else:
                assert question == "how many shapes?", question
    assert kinds == {"many", "colour", "shape", "size", "is", "the", "there"}
    answers = [a for pairs in scenes.qa for q, a in pairs if q.startswith("is ")]
    assert 0.35 < answers.count("yes") / len(answers) < 0.65  # yes/no questions are balanced


def test_qa_examples_flatten_the_questions(scenes):
    index, questions, answers = qa_examples(scenes[:20])
    expected = [(i, q, a) for i, pairs in enumerate(scenes.qa[:20]) for q, a in pairs]
    assert index.dtype == answers.dtype == torch.int64
    assert [
        (int(i), q, ANSWERS[int(a)]) for i, q, a in zip(index, questions, answers, strict=True)
    ] == expected


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
    with pytest.raises(IndexError, match="index"):
        scenes[400]


def test_caption_match_makes_half_the_captions_false(scenes):
    for hard in (False, True):
        images, captions, labels = caption_match(scenes, seed=0, hard=hard)
        assert images is scenes.images and labels.dtype == torch.int64
        assert int((labels == 0).sum()) == len(scenes) // 2
        for i, (caption, label) in enumerate(zip(captions, labels.tolist(), strict=True)):
            if label == 1:
                assert caption == scenes.captions[i]
            else:
                assert not caption_is_true(caption, scenes, i), (caption, objects_of(scenes, i))
        again = caption_match(scenes, seed=0, hard=hard)
        assert again[1] == captions and torch.equal(again[2], labels)


def test_hard_negatives_differ_in_exactly_one_thing(scenes):
    _, captions, labels = caption_match(scenes, seed=1, hard=True)
    kinds = set()
    for i in (labels == 0).nonzero().squeeze(1).tolist():
        (true, true_relation), (false, false_relation) = (
            parse(scenes.captions[i]),
            parse(captions[i]),
        )
        changes = [
            (k, column)
            for k, (a, b) in enumerate(zip(true, false, strict=True))
            for column in range(len(a))
            if a[column] != b[column]
        ]
        changes += [("relation", None)] * (true_relation != false_relation)
        assert len(changes) == 1, (scenes.captions[i], captions[i])
        kinds.add(changes[0][1])
    assert kinds == {0, 1, 2, 3, None}  # shape, colour, size, position, relation


def test_easy_negatives_come_from_other_scenes(scenes):
    _, captions, labels = caption_match(scenes, seed=2)
    own = set(scenes.captions)
    assert all(c in own for c in captions)
    assert captions != scenes.captions and sum(labels.tolist()) == len(scenes) - len(scenes) // 2


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


@pytest.mark.parametrize("count, columns", [(2, 8), (12, 6), (13, 5), (8, 8)])
def test_image_grid_matches_torchvision(count, columns):
    from torchvision.utils import make_grid

    images = torch.rand(count, 3, 7, 5)
    grid = image_grid(images, columns, pad=2, pad_value=0.3)
    assert torch.equal(grid, make_grid(images, nrow=columns, padding=2, pad_value=0.3))


def test_image_grid_names_bad_arguments():
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        image_grid(torch.rand(3, 8, 8), 2)
    with pytest.raises(ValueError, match="columns must be >= 1"):
        image_grid(torch.rand(2, 3, 8, 8), 0)
    with pytest.raises(TypeError, match="pad must be an int"):
        image_grid(torch.rand(2, 3, 8, 8), 2, pad=1.5)


def test_show_scenes_draws_a_grid_with_captions(scenes):
    import matplotlib.pyplot as plt

    fig = show_scenes(scenes[:12], nrow=6)
    assert len(fig.axes) == 1 and len(fig.axes[0].texts) == 12
    assert fig.axes[0].texts[0].get_text().replace("\n", " ") == scenes.captions[0]
    plt.close(fig)
    fig, ax = plt.subplots()
    assert show_scenes(scenes.images[:5], ax=ax) is fig and not ax.texts
    plt.close(fig)


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
        (lambda: Combinations(("shape", "flavour"), set()), ValueError, "keys"),
        (lambda: Combinations("shape", set()), TypeError, "keys"),
        (lambda: Combinations(("shape",), {("hexagon",)}), ValueError, "values"),
        (lambda: Combinations(("shape",), {("circle", "red")}), ValueError, "values"),
        (lambda: Combinations(("shape",), 5), TypeError, "values"),
        (lambda: split_combinations(("shape",)), TypeError, "keys"),
        (lambda: split_combinations(("shape", "smell")), ValueError, "keys"),
        (lambda: split_combinations(("shape", "shape")), ValueError, "keys"),
        (lambda: split_combinations(held_out_fraction=0.9), ValueError, "held_out_fraction"),
        (lambda: split_combinations(held_out_fraction=1.5), ValueError, "held_out_fraction"),
        (lambda: split_combinations(held_out_fraction="half"), TypeError, "held_out_fraction"),
        (lambda: split_combinations(seed=None), TypeError, "seed"),
        (lambda: caption_match("scenes"), TypeError, "scenes"),
        (lambda: caption_match(make_scenes(4), hard="yes"), TypeError, "hard"),
        (lambda: caption_match(make_scenes(4), seed=0.5), TypeError, "seed"),
        (lambda: qa_examples([]), TypeError, "scenes"),
        (lambda: make_scenes(3)["a"], TypeError, "index"),
        (lambda: make_scenes(3)[torch.tensor([0.5])], TypeError, "index"),
        (lambda: make_scenes(3)[torch.tensor([True])], ValueError, "index"),
        (lambda: make_scenes(3)[torch.tensor([7])], IndexError, "index"),
        (
            lambda: captions_for(torch.zeros(2, 4, dtype=torch.long), torch.ones(2), torch.ones(2)),
            ValueError,
            "attributes",
        ),
        (
            lambda: captions_for(
                torch.full((1, 2, 4), 9), torch.ones(1, dtype=torch.long), torch.zeros(1).long()
            ),
            ValueError,
            "attributes",
        ),
        (
            lambda: captions_for(torch.zeros(1, 2, 4).long(), torch.ones(1), torch.zeros(1).long()),
            TypeError,
            "num_objects",
        ),
        (
            lambda: captions_for(
                torch.zeros(1, 2, 4).long(), torch.full((1,), 3), torch.zeros(1).long()
            ),
            ValueError,
            "num_objects",
        ),
        (
            lambda: captions_for(
                torch.zeros(1, 2, 4).long(), torch.full((1,), 2), torch.full((1,), 4)
            ),
            ValueError,
            "relations",
        ),
        (lambda: show_scenes(torch.zeros(2, 1, 32, 32)), ValueError, "scenes_or_images"),
        (lambda: show_scenes([1, 2]), TypeError, "scenes_or_images"),
        (lambda: show_scenes(torch.zeros(2, 3, 32, 32), nrow=0), ValueError, "nrow"),
        (lambda: show_scenes(torch.zeros(2, 3, 32, 32), captions=["a"]), ValueError, "captions"),
        (lambda: show_scenes(torch.zeros(2, 3, 32, 32), captions="ab"), TypeError, "captions"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, error, name):
    with pytest.raises(error, match=rf"^{re.escape(name)} "):
        call()

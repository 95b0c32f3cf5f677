"""Tasks built from scenes: question-answer examples, caption match and their bad input."""

import pytest
import torch

from mmlib.data.scenes import make_scenes
from mmlib.data.tasks import (
    canonical_captions,
    caption_match,
    follow_ups,
    qa_examples,
    relation_questions,
    scratchpad_answers,
    slot_targets,
)
from mmlib.data.world import (
    _TRUE_RELATIONS,
    ANSWERS,
    ATTRIBUTES,
    POSITIONS,
    RELATIONS,
    Combinations,
)
from tests.bad_input import raises_naming
from tests.shapes_reader import caption_is_true, objects_of, parse

# every scene of this one object has the same caption: no false caption can be found for it
ONE_OBJECT = Combinations(tuple(ATTRIBUTES), {("circle", "red", "small", "left")})


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(400, seed=7)


def test_qa_examples_flatten_the_questions(scenes):
    index, questions, answers = qa_examples(scenes[:20])
    expected = [(i, q, a) for i, pairs in enumerate(scenes.qa[:20]) for q, a in pairs]
    assert index.dtype == answers.dtype == torch.int64
    assert [
        (int(i), q, ANSWERS[int(a)]) for i, q, a in zip(index, questions, answers, strict=True)
    ] == expected


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


def test_scratchpad_answer_of_a_hand_built_scene():
    pair = Combinations(
        ("shape", "colour", "position"), {("circle", "red", "left"), ("square", "blue", "right")}
    )
    scene = make_scenes(1, num_objects=2, only=pair)
    asked = ["is the circle left of the square?", "is the square left of the circle?"]
    asked += ["what colour is the circle?"]
    got = scratchpad_answers(scene, torch.zeros(3, dtype=torch.long), asked, ["yes", "no", "red"])
    assert got == ["left right yes", "right left no", "red"]


def test_scratchpad_names_both_places_and_ends_with_the_answer(scenes):
    index, questions, answer_ids = qa_examples(scenes)
    answers = [ANSWERS[a] for a in answer_ids.tolist()]
    written = scratchpad_answers(scenes, index, questions, answers)
    relations = 0
    for i, question, answer, said in zip(index.tolist(), questions, answers, written, strict=True):
        if " ".join(said.split()[-1:]) != answer:
            raise AssertionError(f"{question!r}: {said!r} does not end with {answer!r}")
        if said == answer:
            continue
        relations += 1
        first, second, final = said.split()
        relation = next(r for r in RELATIONS if f" {r} " in question)
        holds = (
            RELATIONS.index(relation)
            in _TRUE_RELATIONS[POSITIONS.index(first)][POSITIONS.index(second)]
        )
        assert final == ("yes" if holds else "no"), (question, said)
        places = {POSITIONS[p] for p in scenes.attributes[i, :2, 3].tolist()}
        assert {first, second} == places
    assert relations > 20


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: caption_match("scenes"), TypeError, "scenes"),
        (lambda: caption_match(make_scenes(4), hard="yes"), TypeError, "hard"),
        (lambda: caption_match(make_scenes(4), seed=0.5), TypeError, "seed"),
        (lambda: qa_examples([]), TypeError, "scenes"),
        (
            lambda: caption_match(make_scenes(2, num_objects=1, only=ONE_OBJECT)),
            ValueError,
            "scenes",
        ),
        (
            lambda: relation_questions(make_scenes(4, num_objects=2), relations=()),
            TypeError,
            "relations",
        ),
        (lambda: relation_questions(make_scenes(4, num_objects=2), seed="1"), TypeError, "seed"),
        (lambda: follow_ups(make_scenes(4), seed=-1), ValueError, "seed"),
        (lambda: canonical_captions("scenes"), TypeError, "scenes"),
        (lambda: slot_targets(torch.zeros(2, 4, dtype=torch.long)), ValueError, "attributes"),
        (lambda: slot_targets(torch.zeros(2, 2, 4)), TypeError, "attributes"),
        (
            lambda: scratchpad_answers(make_scenes(2), torch.zeros(2), ["a"] * 2, ["b"] * 2),
            TypeError,
            "scene_index",
        ),
        (
            lambda: scratchpad_answers(
                make_scenes(2), torch.zeros(2, dtype=torch.long), "q", ["b"]
            ),
            TypeError,
            "questions",
        ),
        (
            lambda: scratchpad_answers(
                make_scenes(2), torch.zeros(1, dtype=torch.long), ["how many shapes?"], ["b"] * 2
            ),
            ValueError,
            "scene_index, questions and answers",
        ),
        (
            lambda: scratchpad_answers(
                make_scenes(2), torch.tensor([5]), ["how many shapes?"], ["one"]
            ),
            ValueError,
            "scene_index",
        ),
        (
            lambda: scratchpad_answers(
                make_scenes(2, num_objects=2, seed=3),
                torch.tensor([0]),
                ["is the dax left of the wug?"],
                ["no"],
            ),
            ValueError,
            "questions[0]",
        ),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, error, name):
    with raises_naming(error, name):
        call()

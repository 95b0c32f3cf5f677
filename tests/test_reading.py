"""mmlib.data.reading: captions parsed back into their objects, questions into their kind."""

import pytest

from mmlib.data.reading import QUESTION_TYPES, parse_caption, question_type
from mmlib.data.scenes import make_scenes
from mmlib.data.tasks import canonical_captions, slot_targets
from tests.bad_input import raises_naming


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(40, seed=0)


def test_question_types_cover_the_shapes_world(scenes):
    kinds = {question_type(q) for qa in scenes.qa for q, _ in qa}
    assert kinds == set(QUESTION_TYPES)
    assert question_type("And the square?") == "follow-up"
    with raises_naming(ValueError, "question"):
        question_type("why is the sky blue?")
    with raises_naming(TypeError, "question"):
        question_type(3)


def test_canonical_captions_and_parsing(scenes):
    captions = canonical_captions(scenes)
    for caption, count in zip(captions, scenes.num_objects.tolist(), strict=True):
        parsed = parse_caption(caption)
        assert parsed is not None and len(parsed["objects"]) == count
        if count == 2:
            assert parsed["where"] in ("left of", "above")
    assert parse_caption("a purple elephant") is None
    slots = slot_targets(scenes.attributes)
    assert slots.shape == (40, 4, 3)
    assert int((slots[..., 0] > 0).sum()) == int(scenes.num_objects.sum())
    with raises_naming(TypeError, "caption"):
        parse_caption(None)

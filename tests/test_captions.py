"""Captions of the shapes world, read back by the small reader of ``tests/shapes_reader.py``."""

import pytest
import torch

from mmlib.data.captions import captions_for, object_captions
from mmlib.data.scenes import make_scenes
from mmlib.data.world import ATTRIBUTES, RELATIONS
from tests.bad_input import raises_naming
from tests.shapes_reader import objects_of, parse


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(400, seed=7)


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


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
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
        (
            lambda: captions_for(
                torch.zeros(2, 2, 4).long(), torch.ones(1).long(), torch.zeros(2).long()
            ),
            ValueError,
            "num_objects",
        ),
        (
            lambda: captions_for(
                torch.full((1, 2, 4), -1), torch.ones(1).long(), torch.zeros(1).long()
            ),
            ValueError,
            "attributes",
        ),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, error, name):
    with raises_naming(error, name):
        call()

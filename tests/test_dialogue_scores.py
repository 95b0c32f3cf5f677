"""mmlib.evaluation.dialogue: caption scores and how well the model reads the scenes."""

import pytest
import torch

from mmlib.evaluation.dialogue import caption_scores, slot_accuracy
from tests.bad_input import raises_naming


def test_caption_scores():
    ref = ["a small red circle on the left", "a large blue square left of a small red circle"]
    assert caption_scores(ref, ref)["exact"] == 1.0
    got = ["a small green circle on the left", "nonsense"]
    scores = caption_scores(got, ref)
    assert scores["exact"] == 0.0
    assert scores["colour"] == 0.0  # green != red, and the second does not parse
    assert scores["size"] == pytest.approx(1 / 3) and scores["where"] == 0.5
    with raises_naming(ValueError, "generated"):
        caption_scores(got[:1], ref)
    with raises_naming(ValueError, "references"):
        caption_scores(got, ["hello", "world"])
    with raises_naming(TypeError, "generated"):
        caption_scores("abc", ref)


def test_slot_accuracy_scores_occupied_and_empty_places(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model.train()
    scores = slot_accuracy(model, scenes.images, scenes.attributes)
    assert set(scores) == {"shape", "colour", "size", "empty"}
    assert all(0.0 <= v <= 1.0 for v in scores.values()) and model.training
    # a head that always says "nothing here" gets every empty place and no object right
    with torch.no_grad():
        model.attribute_head.weight.zero_()
        model.attribute_head.bias.zero_()
        model.attribute_head.bias[[0, 4, 11]] = 1.0  # class 0 of shape, colour and size
    blind = slot_accuracy(model, scenes.images, scenes.attributes)
    assert blind == {"shape": 0.0, "colour": 0.0, "size": 0.0, "empty": 1.0}
    with raises_naming(TypeError, "model"):
        slot_accuracy("model", scenes.images, scenes.attributes)
    with raises_naming(ValueError, "attributes"):
        slot_accuracy(model, scenes.images, scenes.attributes[:3])
    with raises_naming(ValueError, "images"):  # scored once: the values are scanned
        slot_accuracy(model, torch.full_like(scenes.images, float("inf")), scenes.attributes)
    with raises_naming(ValueError, "images"):
        slot_accuracy(model, scenes.images[:, :1], scenes.attributes)

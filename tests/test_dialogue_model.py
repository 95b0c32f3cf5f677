"""mmlib.models.dialogue: the visual dialogue model's shapes, masking, two stages, decoding."""

import pytest
import torch

from mmlib.data.dialogues import encode_dialogues
from mmlib.data.tokenizer import Tokenizer
from mmlib.data.world import ATTRIBUTES
from mmlib.models.dialogue import PREFIX_DIM, PREFIX_PARTS, VisualDialogueModel, set_reading
from tests.bad_input import raises_naming


def test_model_shapes_and_loss(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    images = scenes.images[:3]
    idx, targets = encode_dialogues(tok, [scenes.qa[i][:2] for i in range(3)])
    logits, loss = model(images, idx)
    assert logits.shape == (*idx.shape, tok.vocab_size) and loss is None
    _, loss = model(images, idx, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # the language stage's shortcut: readings computed once, then the GPT alone
    direct, direct_loss = model.gpt(idx, model.image_prefix(images), targets)
    assert torch.equal(direct, logits) and torch.equal(direct_loss, loss)
    assert [h.shape for h in model.attribute_logits(images)] == [(3, 4, 4), (3, 4, 7), (3, 4, 3)]


def test_the_prefix_is_what_the_encoder_read_at_each_place(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    images = scenes.images[:3]
    prefix = model.image_prefix(images)
    assert prefix.shape == (3, 4, PREFIX_DIM) == (3, 4, 18) and not prefix.requires_grad
    shape, colour, size, place = prefix.split([4, 7, 3, 4], dim=-1)
    readings = zip((shape, colour, size), model.attribute_logits(images), strict=True)
    for probabilities, logits in readings:
        assert torch.allclose(probabilities, logits.softmax(-1))
        assert torch.allclose(probabilities.sum(-1), torch.ones(3, 4))
    assert torch.equal(place, torch.eye(4).expand(3, 4, 4))


def test_the_two_stages_train_different_parts(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model.train()
    images = scenes.images[:3]
    loss = model.perception_loss(images, scenes.attributes[:3])
    assert loss.ndim == 0 and loss > 0
    loss.backward()
    assert model.encoder.proj.weight.grad is not None
    assert model.attribute_head.weight.grad is not None
    assert all(p.grad is None for p in model.gpt.parameters())
    model.zero_grad(set_to_none=True)
    idx, targets = encode_dialogues(tok, [scenes.qa[i][:2] for i in range(3)])
    model(images, idx, targets)[1].backward()  # language: the encoder stays as it is
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.attribute_head.weight.grad is None
    assert all(p.grad is not None for p in model.gpt.blocks.parameters())


def test_perception_learns_to_read_the_places(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.perception_loss(scenes.images, scenes.attributes).item()
    for _ in range(30):
        optimizer.zero_grad()
        model.perception_loss(scenes.images, scenes.attributes).backward()
        optimizer.step()
    assert model.perception_loss(scenes.images, scenes.attributes).item() < 0.5 * before


def test_a_future_token_never_influences_the_past(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    idx, _ = encode_dialogues(tok, [scenes.qa[0][:3], scenes.qa[1][:3]])
    changed = idx.clone()
    changed[:, 7:] = torch.randint(4, tok.vocab_size, changed[:, 7:].shape)
    with torch.no_grad():
        before, _ = model(scenes.images[:2], idx)
        after, _ = model(scenes.images[:2], changed)
    assert torch.allclose(before[:, :7], after[:, :7], atol=1e-6)
    assert not torch.allclose(before[:, 7:], after[:, 7:], atol=1e-3)


def test_the_image_and_the_history_condition_the_answer(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    idx, _ = encode_dialogues(tok, [scenes.qa[0][:2]] * 2)
    with torch.no_grad():
        logits, _ = model(scenes.images[:2], idx)  # same words, different images
    assert not torch.allclose(logits[0, 0], logits[1, 0], atol=1e-4)


def test_answers_are_deterministic_and_sampling_repeats_under_a_seed(
    dialogue_world, tiny_dialogue_model
):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    images, questions = scenes.images[:4], [qa[0][0] for qa in scenes.qa[:4]]
    greedy = model.answer(images, questions, tok)
    assert greedy == model.answer(images, questions, tok) and len(greedy) == 4
    history = [[qa[1]] for qa in scenes.qa[:4]]
    sample = dict(history=history, max_new_tokens=4, temperature=2.0)
    first = model.answer(images, questions, tok, seed=1, **sample)
    assert first == model.answer(images, questions, tok, seed=1, **sample)
    others = [model.answer(images, questions, tok, seed=s, **sample) for s in range(2, 6)]
    assert any(o != first for o in others)
    assert all(isinstance(a, str) for a in model.answer(images, [""] * 4, tok, max_new_tokens=8))


def test_bad_input(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    images = scenes.images[:2]
    idx, targets = encode_dialogues(tok, [scenes.qa[0][:1], scenes.qa[1][:1]])
    with raises_naming(ValueError, "images"):
        model(images[:, :1], idx)
    with raises_naming(TypeError, "idx"):
        model(images, idx.float())
    with raises_naming(ValueError, "idx"):
        model(images, idx[:1])
    with raises_naming(ValueError, "idx"):
        model(images, idx[:, None])  # one conversation per image, not (B, S, T)
    with raises_naming(ValueError, "targets"):
        model(images, idx, targets[:, :-1])
    with raises_naming(ValueError, "attributes"):
        model.perception_loss(images, scenes.attributes[:3])
    with raises_naming(TypeError, "attributes"):
        model.perception_loss(images, scenes.attributes[:2].float())
    with raises_naming(ValueError, "images"):
        model.perception_loss(images[0], scenes.attributes[:2])
    with raises_naming(ValueError, "idx"):
        model(images, torch.full_like(idx, tok.vocab_size))
    with raises_naming(TypeError, "questions"):
        model.answer(images, "what?", tok)
    with raises_naming(ValueError, "images, questions and history"):
        model.answer(images, ["how many shapes?"], tok)
    with raises_naming(TypeError, "tokenizer"):
        model.answer(images, ["a", "b"], None)
    with raises_naming(ValueError, "max_new_tokens"):
        model.answer(images, ["a", "b"], tok, max_new_tokens=40)
    with raises_naming(ValueError, "temperature"):
        model.answer(images, ["a", "b"], tok, temperature=0.0)
    with raises_naming(TypeError, "history[0]"):
        model.answer(images, ["a", "b"], tok, history=[["x"], []])
    with raises_naming(ValueError, "images"):  # answer sees its images once: it scans them
        model.answer(torch.full_like(images, float("nan")), ["a", "b"], tok)
    with raises_naming(TypeError, "images"):
        model.answer(images.tolist(), ["a", "b"], tok)
    with raises_naming(ValueError, "tokenizer"):
        model.answer(images, ["a", "b"], Tokenizer.from_texts(["a b"]))
    with raises_naming(ValueError, "max_new_tokens"):
        model.answer(images, ["a", "b"], tok, max_new_tokens=0)
    with raises_naming(ValueError, "seed"):
        model.answer(images, ["a", "b"], tok, seed=-1)
    with raises_naming(TypeError, "temperature"):
        model.answer(images, ["a", "b"], tok, temperature="hot")
    with raises_naming(TypeError, "history"):
        model.answer(images, ["a", "b"], tok, history=5)
    with raises_naming(TypeError, "width"):
        VisualDialogueModel(10, width=2.0)
    with raises_naming(ValueError, "max_tokens"):
        VisualDialogueModel(10, max_tokens=1)
    with raises_naming(ValueError, "n_embd"):
        VisualDialogueModel(10, n_embd=30, n_head=4)
    with raises_naming(ValueError, "init_std"):
        VisualDialogueModel(10, init_std=0.0)


def test_counterfactual_prefix_and_answers_from_readings(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    images = scenes.images[:3]
    prefix = model.image_prefix(images)
    assert sum(s.stop - s.start for s in PREFIX_PARTS.values()) == PREFIX_DIM
    edited = set_reading(prefix, torch.tensor([0, 2, 3]), "colour", torch.tensor([1, 0, 5]))
    colour = PREFIX_PARTS["colour"]
    assert edited.shape == prefix.shape and not edited.data_ptr() == prefix.data_ptr()
    assert edited[0, 0, colour].tolist() == [0, 0, 1, 0, 0, 0, 0]  # class 0 is "nothing here"
    assert edited[2, 3, colour].argmax() == 6 and edited[1, 2, colour].sum() == 1
    untouched = torch.ones(3, 4, dtype=torch.bool)
    untouched[[0, 1, 2], [0, 2, 3]] = False
    assert torch.equal(edited[untouched], prefix[untouched])
    assert torch.equal(edited[..., PREFIX_PARTS["shape"]], prefix[..., PREFIX_PARTS["shape"]])
    assert len(ATTRIBUTES["colour"]) + 1 == colour.stop - colour.start
    # answering from the image's own readings is answering from the image
    questions = [scenes.qa[i][0][0] for i in range(3)]
    assert model.answer_prefix(prefix, questions, tok) == model.answer(images, questions, tok)
    with raises_naming(ValueError, "prefix, questions and history"):
        model.answer_prefix(prefix, questions[:2], tok)
    with raises_naming(ValueError, "prefix"):
        model.answer_prefix(prefix[:, :3], questions, tok)
    with raises_naming(ValueError, "attribute"):
        set_reading(prefix, torch.zeros(3, dtype=torch.long), "place", torch.zeros(3).long())
    with raises_naming(ValueError, "prefix"):
        set_reading(
            prefix[..., :5], torch.zeros(3, dtype=torch.long), "size", torch.zeros(3).long()
        )
    with raises_naming(ValueError, "places"):
        set_reading(
            prefix, torch.zeros(2, dtype=torch.long), "size", torch.zeros(3, dtype=torch.long)
        )
    with raises_naming(ValueError, "places"):
        set_reading(prefix, torch.full((3,), 4), "size", torch.zeros(3, dtype=torch.long))
    with raises_naming(ValueError, "values"):
        set_reading(prefix, torch.zeros(3, dtype=torch.long), "size", torch.full((3,), 2))
    with raises_naming(TypeError, "values"):
        set_reading(prefix, torch.zeros(3, dtype=torch.long), "size", torch.zeros(3))


def test_the_gpt_starts_at_the_fan_in_spread():
    model = VisualDialogueModel(20, n_embd=64, n_head=2)
    assert model.gpt.config.init_std == pytest.approx(1 / 8)
    assert VisualDialogueModel(20, init_std=0.02).gpt.config.init_std == 0.02
    with raises_naming(ValueError, "n_embd"):
        VisualDialogueModel(20, n_embd=0)

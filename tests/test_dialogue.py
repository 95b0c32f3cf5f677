"""Visual dialogue: data encoding, the model's shapes and masking, decoding, bad input."""

import pytest
import torch

from mmlib.data.dialogues import encode_dialogues
from mmlib.data.reading import QUESTION_TYPES, parse_caption, question_type
from mmlib.data.scenes import make_scenes
from mmlib.data.tasks import canonical_captions, follow_ups, slot_targets
from mmlib.data.tokenizer import Tokenizer
from mmlib.evaluation.dialogue import caption_scores, slot_accuracy
from mmlib.evaluation.metrics import question_prior
from mmlib.models.dialogue import PREFIX_DIM, VisualDialogueModel


@pytest.fixture(scope="module")
def world():
    scenes = make_scenes(40, seed=0)
    texts = [t for qa in scenes.qa for pair in qa for t in pair] + canonical_captions(scenes)
    texts += ["and the"]
    return scenes, Tokenizer.from_texts(texts)


def tiny(tokenizer):
    torch.manual_seed(0)
    return VisualDialogueModel(
        tokenizer.vocab_size, n_embd=16, n_layer=2, n_head=2, width=4, max_tokens=30
    ).eval()


def test_question_types_cover_the_shapes_world(world):
    scenes, _ = world
    kinds = {question_type(q) for qa in scenes.qa for q, _ in qa}
    assert kinds == set(QUESTION_TYPES)
    assert question_type("And the square?") == "follow-up"
    with pytest.raises(ValueError, match="question"):
        question_type("why is the sky blue?")
    with pytest.raises(TypeError, match="question"):
        question_type(3)


def test_encode_dialogues_puts_the_loss_on_answers_only(world):
    _, tok = world
    dialogues = [[("how many shapes?", "two"), ("and the square?", "red")], [("", "yes")]]
    idx, targets = encode_dialogues(tok, dialogues)
    assert idx.shape == targets.shape == (2, 13)  # 2 turns of 3 + 1 + 1 + 1 tokens, minus 1
    kept = [tok.decode([t for t in row.tolist() if t != -100], False) for row in targets]
    assert kept == ["two <eos> red <eos>", "yes <eos>"]
    # input is the sequence without its last token, padded with <pad>
    assert tok.decode(idx[1].tolist(), False).startswith("<bos> yes")
    assert int(idx[1, 2]) == tok.pad_id and int(targets[1, 2]) == -100
    with pytest.raises(TypeError, match="dialogues"):
        encode_dialogues(tok, "how many?")
    with pytest.raises(TypeError, match=r"dialogues\[0\]"):
        encode_dialogues(tok, [[("q", 1)]])
    with pytest.raises(ValueError, match=r"dialogues\[0\]"):
        encode_dialogues(tok, [[]])
    with pytest.raises(TypeError, match="tokenizer"):
        encode_dialogues("tok", dialogues)


def test_follow_ups_refer_back_to_the_first_question(world):
    scenes, _ = world
    index, dialogues = follow_ups(scenes, seed=0)
    assert len(index) == len(dialogues) > 0
    for i, ((q1, a1), (q2, a2)) in zip(index.tolist(), dialogues, strict=True):
        assert q2.startswith("and the ")
        opening = q1[: q1.index(" the ")]
        assert (q1, a1) in scenes.qa[i] and (f"{opening} {q2[4:]}", a2) in scenes.qa[i]
    again = follow_ups(scenes, seed=0)
    assert torch.equal(again[0], index) and again[1] == dialogues
    with pytest.raises(TypeError, match="scenes"):
        follow_ups([1, 2])


def test_canonical_captions_and_parsing(world):
    scenes, _ = world
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


def test_caption_scores():
    ref = ["a small red circle on the left", "a large blue square left of a small red circle"]
    assert caption_scores(ref, ref)["exact"] == 1.0
    got = ["a small green circle on the left", "nonsense"]
    scores = caption_scores(got, ref)
    assert scores["exact"] == 0.0
    assert scores["colour"] == 0.0  # green != red, and the second does not parse
    assert scores["size"] == pytest.approx(1 / 3) and scores["where"] == 0.5
    with pytest.raises(ValueError, match="generated and references"):
        caption_scores(got[:1], ref)
    with pytest.raises(ValueError, match="references"):
        caption_scores(got, ["hello", "world"])
    with pytest.raises(TypeError, match="generated"):
        caption_scores("abc", ref)


def test_model_shapes_and_loss(world):
    scenes, tok = world
    model = tiny(tok)
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


def test_the_prefix_is_what_the_encoder_read_at_each_place(world):
    scenes, tok = world
    model = tiny(tok)
    images = scenes.images[:3]
    prefix = model.image_prefix(images)
    assert prefix.shape == (3, 4, PREFIX_DIM) == (3, 4, 18) and not prefix.requires_grad
    shape, colour, size, place = prefix.split([4, 7, 3, 4], dim=-1)
    readings = zip((shape, colour, size), model.attribute_logits(images), strict=True)
    for probabilities, logits in readings:
        assert torch.allclose(probabilities, logits.softmax(-1))
        assert torch.allclose(probabilities.sum(-1), torch.ones(3, 4))
    assert torch.equal(place, torch.eye(4).expand(3, 4, 4))


def test_the_two_stages_train_different_parts(world):
    scenes, tok = world
    model = tiny(tok).train()
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


def test_perception_learns_to_read_the_places(world):
    scenes, tok = world
    model = tiny(tok).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.perception_loss(scenes.images, scenes.attributes).item()
    for _ in range(30):
        optimizer.zero_grad()
        model.perception_loss(scenes.images, scenes.attributes).backward()
        optimizer.step()
    assert model.perception_loss(scenes.images, scenes.attributes).item() < 0.5 * before


def test_a_future_token_never_influences_the_past(world):
    scenes, tok = world
    model = tiny(tok)
    idx, _ = encode_dialogues(tok, [scenes.qa[0][:3], scenes.qa[1][:3]])
    changed = idx.clone()
    changed[:, 7:] = torch.randint(4, tok.vocab_size, changed[:, 7:].shape)
    with torch.no_grad():
        before, _ = model(scenes.images[:2], idx)
        after, _ = model(scenes.images[:2], changed)
    assert torch.allclose(before[:, :7], after[:, :7], atol=1e-6)
    assert not torch.allclose(before[:, 7:], after[:, 7:], atol=1e-3)


def test_the_image_and_the_history_condition_the_answer(world):
    scenes, tok = world
    model = tiny(tok)
    idx, _ = encode_dialogues(tok, [scenes.qa[0][:2]] * 2)
    with torch.no_grad():
        logits, _ = model(scenes.images[:2], idx)  # same words, different images
    assert not torch.allclose(logits[0, 0], logits[1, 0], atol=1e-4)


def test_answers_are_deterministic_and_sampling_repeats_under_a_seed(world):
    scenes, tok = world
    model = tiny(tok)
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


def test_bad_input(world):
    scenes, tok = world
    model = tiny(tok)
    images = scenes.images[:2]
    idx, targets = encode_dialogues(tok, [scenes.qa[0][:1], scenes.qa[1][:1]])
    with pytest.raises(ValueError, match="images"):
        model(images[:, :1], idx)
    with pytest.raises(TypeError, match="idx"):
        model(images, idx.float())
    with pytest.raises(ValueError, match="idx"):
        model(images, idx[:1])
    with pytest.raises(ValueError, match=r"idx must have shape \(B, T\)"):
        model(images, idx[:, None])  # one conversation per image, not (B, S, T)
    with pytest.raises(ValueError, match="targets"):
        model(images, idx, targets[:, :-1])
    with pytest.raises(ValueError, match="attributes"):
        model.perception_loss(images, scenes.attributes[:3])
    with pytest.raises(TypeError, match="attributes"):
        model.perception_loss(images, scenes.attributes[:2].float())
    with pytest.raises(ValueError, match="images"):
        model.perception_loss(images[0], scenes.attributes[:2])
    with pytest.raises(ValueError, match="idx"):
        model(images, torch.full_like(idx, tok.vocab_size))
    with pytest.raises(TypeError, match="questions"):
        model.answer(images, "what?", tok)
    with pytest.raises(ValueError, match="images, questions and history"):
        model.answer(images, ["how many shapes?"], tok)
    with pytest.raises(TypeError, match="tokenizer"):
        model.answer(images, ["a", "b"], None)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.answer(images, ["a", "b"], tok, max_new_tokens=40)
    with pytest.raises(ValueError, match="temperature"):
        model.answer(images, ["a", "b"], tok, temperature=0.0)
    with pytest.raises(TypeError, match=r"history\[0\]"):
        model.answer(images, ["a", "b"], tok, history=[["x"], []])
    with pytest.raises(TypeError, match="width"):
        VisualDialogueModel(10, width=2.0)
    with pytest.raises(ValueError, match="n_embd"):
        VisualDialogueModel(10, n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="init_std"):
        VisualDialogueModel(10, init_std=0.0)


def test_question_prior_answers_each_question_with_its_most_common_answer():
    questions = ["what colour is the circle?"] * 3 + ["how many shapes?"]
    prior = question_prior(questions, ["red", "blue", "red", "two"])
    assert prior == {"what colour is the circle?": "red", "how many shapes?": "two"}
    assert question_prior(["q", "q"], ["b", "a"]) == {"q": "b"}  # a tie: the first met
    with pytest.raises(ValueError, match="questions and answers"):
        question_prior(["q"], ["a", "b"])
    with pytest.raises(TypeError, match="answers"):
        question_prior(["q"], [1])


def test_slot_accuracy_scores_occupied_and_empty_places(world):
    scenes, tok = world
    model = tiny(tok).train()
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
    with pytest.raises(TypeError, match="model"):
        slot_accuracy("model", scenes.images, scenes.attributes)
    with pytest.raises(ValueError, match="attributes"):
        slot_accuracy(model, scenes.images, scenes.attributes[:3])


def test_counterfactual_prefix_and_answers_from_readings(world):
    from mmlib.data.world import ATTRIBUTES
    from mmlib.models.dialogue import PREFIX_PARTS, set_reading

    scenes, tok = world
    model = tiny(tok)
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
    with pytest.raises(ValueError, match="prefix, questions and history"):
        model.answer_prefix(prefix, questions[:2], tok)
    with pytest.raises(ValueError, match="prefix"):
        model.answer_prefix(prefix[:, :3], questions, tok)
    with pytest.raises(ValueError, match="attribute"):
        set_reading(prefix, torch.zeros(3, dtype=torch.long), "place", torch.zeros(3).long())
    with pytest.raises(ValueError, match="places"):
        set_reading(prefix, torch.full((3,), 4), "size", torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="values"):
        set_reading(prefix, torch.zeros(3, dtype=torch.long), "size", torch.full((3,), 2))
    with pytest.raises(TypeError, match="values"):
        set_reading(prefix, torch.zeros(3, dtype=torch.long), "size", torch.zeros(3))


def test_the_gpt_starts_at_the_fan_in_spread():
    model = VisualDialogueModel(20, n_embd=64, n_head=2)
    assert model.gpt.config.init_std == pytest.approx(1 / 8)
    assert VisualDialogueModel(20, init_std=0.02).gpt.config.init_std == 0.02
    with pytest.raises(ValueError, match="n_embd"):
        VisualDialogueModel(20, n_embd=0)

"""mmlib.models.dialogue: the visual dialogue model's shapes, masking, four stages, decoding."""

import pytest
import torch
import torch.nn.functional as F

from mmlib.data.dialogues import encode_dialogues
from mmlib.data.tokenizer import Tokenizer
from mmlib.models.dialogue import STAGES, VisualDialogueModel, transplant
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
    # training's shortcut: region features computed once, then the projector and the GPT
    direct, direct_loss = model.talk(model.region_features(images), idx, targets)
    assert torch.equal(direct, logits) and torch.equal(direct_loss, loss)
    assert [h.shape for h in model.attribute_logits(images)] == [(3, 4, 4), (3, 4, 7), (3, 4, 3)]


def test_visual_tokens_are_projected_normalised_region_features(
    dialogue_world, tiny_dialogue_model
):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    images = scenes.images[:3]
    features = model.region_features(images)
    assert features.shape == (3, 4, 16) and not features.requires_grad  # width 4: 4 * 4
    assert torch.allclose(features, F.layer_norm(model.slots(images), (16,)))
    assert torch.allclose(features.mean(-1), torch.zeros(3, 4), atol=1e-5)
    tokens = model.projector(features)
    assert tokens.shape == (3, 4, model.gpt.config.n_embd)
    # the projector is LLaVA-1.5's MLP plus one learned vector per place, started at init_std
    assert [type(m).__name__ for m in model.projector.net] == ["Linear", "GELU", "Linear"]
    assert model.projector.position.shape == (4, 16)
    assert 0.1 < float(model.projector.position.std()) / model.gpt.config.init_std < 2
    # the visual tokens go before the tokens, which keep the positions of text-only training
    idx = torch.tensor([tok.encode("how many shapes?") + [tok.bos_id]] * 3)
    with_image, _ = model.talk(features, idx)
    blocks_in = []
    hook = model.gpt.blocks[0].register_forward_pre_hook(lambda m, a: blocks_in.append(a[0]))
    model.talk(features, idx)
    hook.remove()
    positions = torch.arange(idx.shape[1])
    text = model.gpt.wte(idx) + model.gpt.wpe(positions)
    assert torch.allclose(blocks_in[0], torch.cat([tokens, text], dim=1))
    assert with_image.shape == (3, idx.shape[1], tok.vocab_size)


def _stage_loss(model, stage, scenes, tok):
    images = scenes.images[:3]
    dialogues = [scenes.qa[i][:2] for i in range(3)]
    if stage == "perception":
        return model.perception_loss(images, scenes.attributes[:3])
    if stage == "text":
        idx, targets = encode_dialogues(tok, dialogues, answers_only=False)
        return model.gpt(idx, targets=targets)[1]
    idx, targets = encode_dialogues(tok, dialogues)
    return model(images, idx, targets)[1]


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_trains_only_its_parts(dialogue_world, tiny_dialogue_model, stage):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model.train()
    assert model.set_stage(stage) == stage == model.stage
    loss = _stage_loss(model, stage, scenes, tok)
    assert loss.ndim == 0 and loss > 0
    loss.backward()
    for part in ("encoder", "attribute_head", "projector", "gpt"):
        grads = [p.grad for p in getattr(model, part).parameters()]
        trains = part in STAGES[stage]
        assert all(p.requires_grad == trains for p in getattr(model, part).parameters())
        if trains:  # every tensor of a training part gets a gradient
            assert all(g is not None for g in grads), (stage, part)
        else:
            assert all(g is None for g in grads), (stage, part)
    assert STAGES["align"] == ("projector",) and "encoder" not in STAGES["instruct"]


def test_a_new_model_starts_in_the_perception_stage():
    model = VisualDialogueModel(20, width=4, n_embd=16)
    assert model.stage == "perception"
    assert not any(p.requires_grad for p in model.gpt.parameters())
    with raises_naming(ValueError, "stage"):
        model.set_stage("pretrain")


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
    features = model.region_features(images)
    with raises_naming(ValueError, "features"):
        model.talk(features[:, :3], idx)
    with raises_naming(ValueError, "features"):
        model.talk(features[..., :5], idx)
    with raises_naming(TypeError, "features"):
        model.talk(features.long(), idx)


def test_transplanted_features_and_answers_from_features(dialogue_world, tiny_dialogue_model):
    scenes, tok = dialogue_world
    model = tiny_dialogue_model
    images = scenes.images[:3]
    features = model.region_features(images)
    donors = torch.randn(3, 16)
    edited = transplant(features, torch.tensor([0, 2, 3]), donors)
    assert edited.shape == features.shape and not edited.data_ptr() == features.data_ptr()
    assert torch.equal(edited[[0, 1, 2], [0, 2, 3]], donors)
    untouched = torch.ones(3, 4, dtype=torch.bool)
    untouched[[0, 1, 2], [0, 2, 3]] = False
    assert torch.equal(edited[untouched], features[untouched])
    # answering from the image's own features is answering from the image
    questions = [scenes.qa[i][0][0] for i in range(3)]
    assert model.answer_features(features, questions, tok) == model.answer(images, questions, tok)
    with raises_naming(ValueError, "features, questions and history"):
        model.answer_features(features, questions[:2], tok)
    with raises_naming(ValueError, "features"):
        model.answer_features(features[:, :3], questions, tok)
    with raises_naming(ValueError, "features"):
        transplant(features[:, :3], torch.zeros(3, dtype=torch.long), donors)
    with raises_naming(ValueError, "places"):
        transplant(features, torch.zeros(2, dtype=torch.long), donors)
    with raises_naming(ValueError, "places"):
        transplant(features, torch.full((3,), 4), donors)
    with raises_naming(ValueError, "donors"):
        transplant(features, torch.zeros(3, dtype=torch.long), donors[:, :5])
    with raises_naming(TypeError, "places"):
        transplant(features, torch.zeros(3), donors)


def test_the_gpt_starts_at_the_fan_in_spread():
    model = VisualDialogueModel(20, n_embd=64, n_head=2)
    assert model.gpt.config.init_std == pytest.approx(1 / 8)
    assert VisualDialogueModel(20, init_std=0.02).gpt.config.init_std == 0.02
    with raises_naming(ValueError, "n_embd"):
        VisualDialogueModel(20, n_embd=0)

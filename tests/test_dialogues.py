"""mmlib.data.dialogues: conversations as token sequences, with the loss on answers only."""

import torch

from mmlib.data.dialogues import check_dialogue, encode_dialogues
from mmlib.data.tasks import follow_ups
from tests.bad_input import raises_naming


def test_encode_dialogues_puts_the_loss_on_answers_only(dialogue_world):
    _, tok = dialogue_world
    dialogues = [[("how many shapes?", "two"), ("and the square?", "red")], [("", "yes")]]
    idx, targets = encode_dialogues(tok, dialogues)
    assert idx.shape == targets.shape == (2, 13)  # 2 turns of 3 + 1 + 1 + 1 tokens, minus 1
    kept = [tok.decode([t for t in row.tolist() if t != -100], False) for row in targets]
    assert kept == ["two <eos> red <eos>", "yes <eos>"]
    # input is the sequence without its last token, padded with <pad>
    assert tok.decode(idx[1].tolist(), False).startswith("<bos> yes")
    assert int(idx[1, 2]) == tok.pad_id and int(targets[1, 2]) == -100
    with raises_naming(TypeError, "dialogues"):
        encode_dialogues(tok, "how many?")
    with raises_naming(TypeError, "dialogues"):
        encode_dialogues(tok, [])
    with raises_naming(TypeError, "dialogues[0]"):
        encode_dialogues(tok, [[("q", 1)]])
    with raises_naming(ValueError, "dialogues[0]"):
        encode_dialogues(tok, [[]])
    with raises_naming(TypeError, "tokenizer"):
        encode_dialogues("tok", dialogues)
    with raises_naming(TypeError, "answers_only"):
        encode_dialogues(tok, dialogues, answers_only="no")
    # a language model's pretraining: every next token is a target, padding aside
    same_idx, every = encode_dialogues(tok, dialogues, answers_only=False)
    assert torch.equal(same_idx, idx)
    assert tok.decode([t for t in every[0].tolist() if t != -100], False) == tok.decode(
        idx[0, 1:].tolist() + [tok.eos_id], False
    )
    assert torch.equal(every[targets != -100], targets[targets != -100])
    assert int(every[1, 2]) == -100  # padding is never a target
    # check_dialogue, which also checks VisualDialogueModel.answer's history
    assert check_dialogue("turns", [["q", "a"], ("", "b")]) == [("q", "a"), ("", "b")]
    for bad in ("q a", [("q", "a", "b")], [("q",)], [("q", None)], None):
        with raises_naming(TypeError, "turns"):
            check_dialogue("turns", bad)


def test_follow_ups_refer_back_to_the_first_question(dialogue_world):
    scenes, _ = dialogue_world
    index, dialogues = follow_ups(scenes, seed=0)
    assert len(index) == len(dialogues) > 0
    for i, ((q1, a1), (q2, a2)) in zip(index.tolist(), dialogues, strict=True):
        assert q2.startswith("and the ")
        opening = q1[: q1.index(" the ")]
        assert (q1, a1) in scenes.qa[i] and (f"{opening} {q2[4:]}", a2) in scenes.qa[i]
    again = follow_ups(scenes, seed=0)
    assert torch.equal(again[0], index) and again[1] == dialogues
    with raises_naming(TypeError, "scenes"):
        follow_ups([1, 2])

"""Conversations as token sequences for next-token training, with the loss on answers only.

Every turn reads ``question <bos> answer <eos>``, so one sequence can hold a whole
conversation, and a caption is simply the answer to the empty question:
``<bos> a small red circle on the left <eos>``. Targets are ``IGNORE`` (-100, the value
cross-entropy skips) wherever the next token is the user's, so the model is never asked to
predict the user's words.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmlib.data.tokenizer import Tokenizer
from mmlib.validate import check_type, describe, require

__all__ = ["IGNORE", "check_dialogue", "dialogue_ids", "encode_dialogues"]


IGNORE = -100  # target value that cross-entropy skips


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _is_turn(turn: object) -> bool:
    return (
        isinstance(turn, (tuple, list)) and len(turn) == 2 and all(isinstance(t, str) for t in turn)
    )


def check_dialogue(name: str, turns: object) -> list[tuple[str, str]]:
    """A dialogue is a list of (question, answer) pairs of str."""
    if not (_is_list(turns) and all(map(_is_turn, turns))):
        raise TypeError(f"{name} must be a list of (question, answer) pairs, got {describe(turns)}")
    return [tuple(turn) for turn in turns]


def dialogue_ids(
    tokenizer: Tokenizer, turns: list[tuple[str, str]], cache: dict | None = None
) -> tuple[list, list]:
    """Token ids of ``q <bos> a <eos>`` per turn, and for each id whether it is an answer's.
    ``cache`` (text -> ids) saves encoding the same question twice."""
    cache = {} if cache is None else cache
    ids, is_answer = [], []
    for question, answer in turns:
        for text in (question, answer):
            if text not in cache:
                cache[text] = tokenizer.encode(text)
        q = cache[question] + [tokenizer.bos_id]
        a = cache[answer] + [tokenizer.eos_id]
        ids += q + a
        is_answer += [False] * len(q) + [True] * len(a)
    return ids, is_answer


def encode_dialogues(
    tokenizer: Tokenizer,
    dialogues: Sequence[Sequence[tuple[str, str]]],
    answers_only: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets for next-token training, with the loss on answers only.

    Each dialogue (a list of (question, answer) turns; the question may be ``""`` for a
    caption) becomes ``q1 <bos> a1 <eos> q2 <bos> a2 <eos> ...``. Returns ``idx (N, T) int64``
    (the sequence without its last token, padded with ``<pad>``) and ``targets (N, T) int64``
    (the sequence shifted by one, ``-100`` wherever the next token is part of a question,
    a ``<bos>`` or padding), so the loss only counts answer words and their ``<eos>``.
    With ``answers_only=False`` every next token but padding is a target: plain language
    modelling of the whole text, as in a language model's pretraining.
    """
    check_type("tokenizer", tokenizer, Tokenizer)
    check_type("answers_only", answers_only, bool)
    if not (_is_list(dialogues) and dialogues):
        raise TypeError(f"dialogues must be a non-empty list, got {describe(dialogues)}")
    rows, cache = [], {}
    for k, turns in enumerate(dialogues):
        turns = check_dialogue(f"dialogues[{k}]", turns)
        require(len(turns) > 0, f"dialogues[{k}]", "a non-empty list of turns", turns)
        rows.append(dialogue_ids(tokenizer, turns, cache))
    width = max(len(ids) for ids, _ in rows) - 1
    idx, targets = [], []
    for ids, is_answer in rows:
        pad = width - len(ids) + 1
        idx.append(ids[:-1] + [tokenizer.pad_id] * pad)
        targets.append(
            [
                t if a or not answers_only else IGNORE
                for t, a in zip(ids[1:], is_answer[1:], strict=True)
            ]
            + [IGNORE] * pad
        )
    return torch.tensor(idx, dtype=torch.long), torch.tensor(targets, dtype=torch.long)

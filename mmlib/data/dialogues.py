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
from mmlib.validate import check_type, describe

__all__ = ["IGNORE", "check_dialogue", "dialogue_ids", "encode_dialogues"]


IGNORE = -100  # target value that cross-entropy skips


def check_dialogue(name: str, turns: object) -> list[tuple[str, str]]:
    """A dialogue is a list of (question, answer) pairs of str."""
    if isinstance(turns, str) or not isinstance(turns, Sequence):
        raise TypeError(f"{name} must be a list of (question, answer) pairs, got {describe(turns)}")
    for turn in turns:
        if not (
            isinstance(turn, (tuple, list))
            and len(turn) == 2
            and all(isinstance(t, str) for t in turn)
        ):
            raise TypeError(f"{name} must hold (question, answer) pairs of str, got {turn!r}")
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
    tokenizer: Tokenizer, dialogues: Sequence[Sequence[tuple[str, str]]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets for next-token training, with the loss on answers only.

    Each dialogue (a list of (question, answer) turns; the question may be ``""`` for a
    caption) becomes ``q1 <bos> a1 <eos> q2 <bos> a2 <eos> ...``. Returns ``idx (N, T) int64``
    (the sequence without its last token, padded with ``<pad>``) and ``targets (N, T) int64``
    (the sequence shifted by one, ``-100`` wherever the next token is part of a question,
    a ``<bos>`` or padding), so the loss only counts answer words and their ``<eos>``.
    """
    check_type("tokenizer", tokenizer, Tokenizer)
    if isinstance(dialogues, str) or not isinstance(dialogues, Sequence) or not dialogues:
        raise TypeError(
            f"dialogues must be a non-empty list of dialogues, got {describe(dialogues)}"
        )
    rows, cache = [], {}
    for k, turns in enumerate(dialogues):
        turns = check_dialogue(f"dialogues[{k}]", turns)
        if not turns:
            raise ValueError(f"dialogues[{k}] must hold at least one turn, got []")
        rows.append(dialogue_ids(tokenizer, turns, cache))
    width = max(len(ids) for ids, _ in rows) - 1
    idx, targets = [], []
    for ids, is_answer in rows:
        pad = width - len(ids) + 1
        idx.append(ids[:-1] + [tokenizer.pad_id] * pad)
        targets.append(
            [t if a else IGNORE for t, a in zip(ids[1:], is_answer[1:], strict=True)]
            + [IGNORE] * pad
        )
    return torch.tensor(idx, dtype=torch.long), torch.tensor(targets, dtype=torch.long)

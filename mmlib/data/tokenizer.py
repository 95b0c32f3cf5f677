"""A word-level tokenizer: text -> token ids -> text.

Text is lowercased and split into words and single punctuation marks ("what colour is the
circle?" -> what, colour, is, the, circle, ?). The vocabulary starts with four special tokens,
``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2 and ``<unk>`` = 3, followed by the words of the
training texts, most frequent first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

from mmlib.validate import check_int, check_strings, check_type, describe, require

__all__ = ["SPECIAL_TOKENS", "Tokenizer", "split_words"]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
_WORD = re.compile(r"\w+|[^\w\s]")
_CLOSING = re.compile(r" ([.,!?;:)])")  # punctuation that is written against the word before


def split_words(text: str) -> list[str]:
    """Lowercase ``text`` and split it into words and single punctuation marks."""
    check_type("text", text, str)
    return _WORD.findall(text.lower())


def _is_id(i: object, n: int) -> bool:
    return isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n


def _join(words: Sequence[str]) -> str:
    return _CLOSING.sub(r"\1", " ".join(words))


class Tokenizer:
    """Maps words to ids and back. Build one with :meth:`Tokenizer.from_texts`.

    ``tokens`` is the whole vocabulary in id order, starting with :data:`SPECIAL_TOKENS`.
    """

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, tokens: Sequence[str]):
        tokens = check_strings("tokens", tokens)
        if not all(tokens):
            raise TypeError("tokens must hold only non-empty str, got ''")
        ok = tuple(tokens[:4]) == SPECIAL_TOKENS and len(set(tokens)) == len(tokens)
        require(ok, "tokens", f"distinct, starting with {SPECIAL_TOKENS}", tokens)
        self.tokens = tokens
        self.ids = {token: i for i, token in enumerate(tokens)}

    @classmethod
    def from_texts(cls, texts: Sequence[str], min_count: int = 1) -> Tokenizer:
        """Vocabulary of every word seen at least ``min_count`` times, most frequent first
        (ties in alphabetical order), after the special tokens."""
        texts = check_strings("texts", texts)
        check_int("min_count", min_count, minimum=1)
        counts = Counter(word for text in texts for word in split_words(text))
        words = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS),
                       key=lambda w: (-counts[w], w))  # fmt: skip
        return cls([*SPECIAL_TOKENS, *words])

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    @staticmethod
    def normalise(text: str) -> str:
        """``text`` as :meth:`decode` writes it back: lowercase, one space between words,
        closing punctuation against the word before ("What colour?" -> "what colour?")."""
        return _join(split_words(text))

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of ``text``; unknown words become ``<unk>``."""
        for name, flag in (("add_bos", add_bos), ("add_eos", add_eos)):
            check_type(name, flag, bool)
        ids = [self.ids.get(word, self.unk_id) for word in split_words(text)]
        return [self.bos_id] * add_bos + ids + [self.eos_id] * add_eos

    def decode(self, ids: Sequence[int] | torch.Tensor, skip_special: bool = True) -> str:
        """Text of ``ids`` (a list or a 1-D tensor). ``skip_special`` drops ``<pad>``, ``<bos>``
        and ``<eos>``; ``<unk>`` always stays, since it stands for a word."""
        if isinstance(ids, torch.Tensor) and ids.ndim == 1 and not ids.is_floating_point():
            ids = ids.tolist()
        if isinstance(ids, (str, torch.Tensor)) or not isinstance(ids, Sequence):
            raise TypeError(f"ids must be a list of int or a 1-D int tensor, got {describe(ids)}")
        bad = [i for i in ids if not _is_id(i, len(self))]
        require(not bad, "ids", f"ints in [0, {len(self)})", bad)
        skipped = {self.pad_id, self.bos_id, self.eos_id} if skip_special else set()
        return _join([self.tokens[i] for i in ids if i not in skipped])

    def encode_batch(
        self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids (B, T) int64`` padded with ``<pad>`` = 0 after each text, and ``lengths (B,)
        int64``, the number of real tokens; ``T`` is the longest length (at least 1)."""
        texts = check_strings("texts", texts)
        require(len(texts) > 0, "texts", "a non-empty list", texts)
        encoded = [
            torch.tensor(self.encode(t, add_bos=add_bos, add_eos=add_eos), dtype=torch.long)
            for t in texts
        ]
        lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        ids = pad_sequence(encoded, batch_first=True, padding_value=self.pad_id)
        if ids.shape[1] == 0:  # every text was empty: keep one column of padding
            ids = torch.full((len(texts), 1), self.pad_id, dtype=torch.long)
        return ids, lengths

    def bag_of_words(self, texts: Sequence[str]) -> torch.Tensor:
        """How often each vocabulary word occurs in each text: ``(B, vocab_size) float32``.
        Word order is lost ("a red circle" = "circle red a"); a linear layer on it sums one
        learned vector per word, the simplest text encoder (chapter 6.2's denoiser uses it)."""
        ids, _ = self.encode_batch(texts)  # (B, T), padded with <pad> = 0
        counts = torch.zeros(len(ids), self.vocab_size)
        counts.scatter_add_(1, ids, torch.ones(ids.shape))
        counts[:, self.pad_id] = 0.0  # padding is not a word
        return counts

    def to_dict(self) -> dict:
        """Everything needed to rebuild the tokenizer, for a checkpoint."""
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, state: dict) -> Tokenizer:
        """The tokenizer saved by :meth:`to_dict`."""
        ok = isinstance(state, dict) and "tokens" in state
        require(ok, "state", "a dict with key 'tokens'", describe(state))
        return cls(state["tokens"])

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"

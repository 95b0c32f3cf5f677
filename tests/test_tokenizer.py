"""The word-level tokenizer."""

import pytest
import torch

from mmlib.data.tokenizer import SPECIAL_TOKENS, Tokenizer, split_words
from tests.bad_input import raises_naming

TEXTS = [
    "a small red circle on the left",
    "What colour is the circle?",
    "a large blue square above a small red circle",
]


@pytest.fixture
def tok():
    return Tokenizer.from_texts(TEXTS)


def test_special_tokens_come_first(tok):
    assert SPECIAL_TOKENS == ("<pad>", "<bos>", "<eos>", "<unk>")
    assert tok.tokens[:4] == list(SPECIAL_TOKENS)
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert tok.vocab_size == len(tok) == 4 + 15
    assert tok.tokens[4:9] == ["a", "circle", "red", "small", "the"]  # by count, ties a-z


def test_words_are_lowercased_and_punctuation_is_split():
    assert split_words("What colour is the Circle?") == [
        "what",
        "colour",
        "is",
        "the",
        "circle",
        "?",
    ]
    assert split_words("  two,  three.") == ["two", ",", "three", "."]
    assert Tokenizer.normalise("What  colour is the Circle ?") == "what colour is the circle?"


@pytest.mark.parametrize("text", [*TEXTS, "IS THE circle left of the square ?", ""])
def test_decode_inverts_encode(text):
    tok = Tokenizer.from_texts([*TEXTS, "is left of square"])
    assert tok.decode(tok.encode(text)) == Tokenizer.normalise(text)
    assert tok.decode(tok.encode(text, add_bos=True, add_eos=True)) == Tokenizer.normalise(text)


def test_unknown_words_become_unk(tok):
    ids = tok.encode("a purple hexagon")
    assert ids[0] == tok.ids["a"] and ids[1:] == [tok.unk_id, tok.unk_id]
    assert tok.decode(ids) == "a <unk> <unk>"


def test_bos_eos_and_skip_special(tok):
    ids = tok.encode("the circle", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(ids) == 4
    assert tok.decode(ids, skip_special=False) == "<bos> the circle <eos>"
    assert tok.decode(torch.tensor(ids + [0, 0])) == "the circle"


def test_encode_batch_pads_and_counts(tok):
    ids, lengths = tok.encode_batch(
        ["the circle", "a small red circle on the left", ""], add_eos=True
    )
    assert ids.dtype == lengths.dtype == torch.int64
    assert lengths.tolist() == [3, 8, 1] and ids.shape == (3, 8)
    for row, n in zip(ids, lengths.tolist(), strict=True):
        assert bool((row[n:] == tok.pad_id).all()) and bool((row[:n] != tok.pad_id).all())
        assert int(row[n - 1]) == tok.eos_id
    assert ids[0, :3].tolist() == tok.encode("the circle", add_eos=True)
    empty, none = tok.encode_batch([""])
    assert empty.shape == (1, 1) and none.tolist() == [0]


def test_min_count_and_state_dict_round_trip(tok):
    rare = Tokenizer.from_texts(TEXTS, min_count=2)
    assert "colour" not in rare.ids and "circle" in rare.ids and "red" in rare.ids
    again = Tokenizer.from_dict(tok.to_dict())
    assert again.tokens == tok.tokens and again.encode(TEXTS[1]) == tok.encode(TEXTS[1])
    assert isinstance(tok.to_dict()["tokens"], list)


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda t: Tokenizer.from_texts("a b"), TypeError, "texts"),
        (lambda t: Tokenizer.from_texts(["a", 3]), TypeError, "texts"),
        (lambda t: Tokenizer.from_texts(["a"], min_count=0), ValueError, "min_count"),
        (lambda t: t.encode(5), TypeError, "text"),
        (lambda t: t.encode("a", add_bos="yes"), TypeError, "add_bos"),
        (lambda t: t.encode("a", add_eos=1), TypeError, "add_eos"),
        (lambda t: t.decode([0, 99]), ValueError, "ids"),
        (lambda t: t.decode(torch.zeros(2, 2, dtype=torch.long)), TypeError, "ids"),
        (lambda t: t.decode("abc"), TypeError, "ids"),
        (lambda t: t.encode_batch([]), ValueError, "texts"),
        (lambda t: t.encode_batch("the circle"), TypeError, "texts"),
        (lambda t: Tokenizer(["a", "b"]), ValueError, "tokens"),
        (lambda t: Tokenizer([*SPECIAL_TOKENS, "a", "a"]), ValueError, "tokens"),
        (lambda t: Tokenizer.from_dict({"words": []}), ValueError, "state"),
        (lambda t: Tokenizer.from_dict("tokens"), ValueError, "state"),
        (lambda t: Tokenizer(5), TypeError, "tokens"),
        (lambda t: Tokenizer([*SPECIAL_TOKENS, ""]), TypeError, "tokens"),
        (lambda t: Tokenizer([*SPECIAL_TOKENS, 3]), TypeError, "tokens"),
        (lambda t: t.decode(torch.tensor([1.0])), TypeError, "ids"),
        (lambda t: t.decode(torch.tensor([0, 99])), ValueError, "ids"),
        (lambda t: t.decode([True]), ValueError, "ids"),
        (lambda t: t.decode([-1]), ValueError, "ids"),
        (lambda t: t.encode_batch(["a", 3]), TypeError, "texts"),
        (lambda t: t.encode_batch(["a"], add_bos=1), TypeError, "add_bos"),
        (lambda t: split_words(None), TypeError, "text"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(tok, call, error, name):
    with raises_naming(error, name):
        call(tok)


def test_bag_of_words_counts_each_word(tok):
    bags = tok.bag_of_words(["a red circle", "circle red a", "a a red", ""])
    assert bags.shape == (4, tok.vocab_size) and bags.dtype == torch.float32
    assert torch.equal(bags[0], bags[1])  # word order is lost
    assert bags[2, tok.ids["a"]] == 2 and bags[2].sum() == 3
    assert bags[3].sum() == 0 and bags[:, tok.pad_id].sum() == 0
    with raises_naming(TypeError, "texts"):
        tok.bag_of_words("a red circle")

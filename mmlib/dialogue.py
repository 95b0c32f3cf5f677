"""Visual dialogue: a tiny GPT that answers questions about an image, over several turns.

What the image encoder reads at each place of the shapes world (one vector per place) is the
*prefix* of a decoder-only transformer (:class:`mmlib.gpt.GPT`); the conversation follows as
tokens. Every turn reads ``question <bos> answer <eos>``, so one sequence can hold a whole
conversation, and a caption is simply the answer to the empty question:
``<bos> a small red circle on the left <eos>``.
The loss is taken on answer tokens only: the model is never asked to predict the user's words.

Shapes: B batch, T tokens, 4 prefix vectors (one per place) of PREFIX_DIM = 18 numbers.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.encoders import ImageEncoder
from mmlib.gpt import GPT, GPTConfig
from mmlib.shapes import ATTRIBUTES, POSITIONS, RELATIONS, Scenes, captions_for
from mmlib.tokenizer import Tokenizer
from mmlib.validate import (
    check_float,
    check_images,
    check_int,
    check_strings,
    check_tensor,
    describe,
)

__all__ = [
    "PREFIX_DIM",
    "PREFIX_PARTS",
    "QUESTION_TYPES",
    "VisualDialogueModel",
    "caption_scores",
    "canonical_captions",
    "encode_dialogues",
    "follow_ups",
    "parse_caption",
    "question_prior",
    "question_type",
    "set_reading",
    "slot_accuracy",
    "slot_targets",
]

QUESTION_TYPES = ("count", "colour", "shape", "size", "position", "relation", "exists")
_OPENINGS = (  # how each type of question from mmlib.shapes begins
    ("how many", "count"),
    ("what colour is", "colour"),
    ("what shape is", "shape"),
    ("what size is", "size"),
    ("where is", "position"),
    ("is there", "exists"),
    ("is the", "relation"),
    ("and the", "follow-up"),
)
_FOLLOWED = ("what colour is", "what shape is", "what size is", "where is")
IGNORE = -100  # target value that cross-entropy skips
# Pixel mean and spread of the shapes world (mostly black background): the encoder
# standardises its input with them.
IMAGE_MEAN, IMAGE_STD = 0.04, 0.16


# ---------------------------------------------------------------------------- text
def _check_string_pairs(
    name_a: str, a: object, name_b: str, b: object
) -> tuple[list[str], list[str]]:
    """Two non-empty lists of str of the same length, such as questions and their answers."""
    a, b = check_strings(name_a, a), check_strings(name_b, b)
    if len(a) != len(b) or not a:
        raise ValueError(
            f"{name_a} and {name_b} must be non-empty and of the same length, got "
            f"{len(a)} and {len(b)}"
        )
    return a, b


def _check_dialogue(name: str, turns: object) -> list[tuple[str, str]]:
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


def question_type(question: str) -> str:
    """The kind of a question from :mod:`mmlib.shapes`: one of :data:`QUESTION_TYPES`, or
    ``"follow-up"`` for "and the square?"."""
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {describe(question)}")
    text = Tokenizer.normalise(question)
    for opening, kind in _OPENINGS:
        if text.startswith(opening + " "):
            return kind
    raise ValueError(f"question must start like a question from mmlib.shapes, got {question!r}")


def follow_ups(scenes: Scenes, seed: int = 0) -> tuple[torch.Tensor, list[list[tuple[str, str]]]]:
    """Two-turn dialogues whose second question only makes sense after the first.

    Where a scene has the same kind of question about both of its objects ("what colour is the
    circle?" and "what colour is the square?"), the second becomes "and the square?". One
    dialogue per such pair, the object asked about first drawn at random from ``seed``.
    Returns ``scene_index (M,) int64`` and M dialogues ``[(q1, a1), ("and the square?", a2)]``.
    """
    if not isinstance(scenes, Scenes):
        raise TypeError(f"scenes must be a Scenes (from make_scenes), got {describe(scenes)}")
    check_int("seed", seed, minimum=0)
    flips = torch.rand(len(scenes), len(_FOLLOWED), generator=torch.Generator().manual_seed(seed))
    index, dialogues = [], []
    for i, pairs in enumerate(scenes.qa):
        for k, opening in enumerate(_FOLLOWED):
            asked = [(q, a) for q, a in pairs if q.startswith(opening + " ")]
            if len(asked) != 2:
                continue
            first, second = asked if flips[i, k] < 0.5 else asked[::-1]
            reference = second[0][len(opening) + 1 :]  # "the square?"
            index.append(i)
            dialogues.append([first, (f"and {reference}", second[1])])
    return torch.tensor(index, dtype=torch.long), dialogues


def _dialogue_ids(
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
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a Tokenizer, got {describe(tokenizer)}")
    if isinstance(dialogues, str) or not isinstance(dialogues, Sequence) or not dialogues:
        raise TypeError(
            f"dialogues must be a non-empty list of dialogues, got {describe(dialogues)}"
        )
    rows, cache = [], {}
    for k, turns in enumerate(dialogues):
        turns = _check_dialogue(f"dialogues[{k}]", turns)
        if not turns:
            raise ValueError(f"dialogues[{k}] must hold at least one turn, got []")
        rows.append(_dialogue_ids(tokenizer, turns, cache))
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


def question_prior(questions: Sequence[str], answers: Sequence[str]) -> dict[str, str]:
    """A blind baseline: for each distinct question text, its most common answer.

    ``questions`` and ``answers``: M training pairs of str. Returns ``{question: answer}``;
    ties go to the answer met first. A model that answers no better than this on a kind of
    question has not learned to look at the image for it.
    """
    questions, answers = _check_string_pairs("questions", questions, "answers", answers)
    counts: dict[str, Counter] = {}
    for question, answer in zip(questions, answers, strict=True):
        counts.setdefault(question, Counter())[answer] += 1
    return {question: c.most_common(1)[0][0] for question, c in counts.items()}


# ---------------------------------------------------------------------------- captions
_SIZES, _COLOURS, _SHAPES = ATTRIBUTES["size"], ATTRIBUTES["colour"], ATTRIBUTES["shape"]
_OBJECT = rf"a ({'|'.join(_SIZES)}) ({'|'.join(_COLOURS)}) ({'|'.join(_SHAPES)})"
_WHERE = {"on the left": "left", "on the right": "right", "at the top": "top"}
_WHERE["at the bottom"] = "bottom"
_ONE = re.compile(rf"{_OBJECT} ({'|'.join(_WHERE)})")
_TWO = re.compile(rf"{_OBJECT} ({'|'.join(RELATIONS)}) {_OBJECT}")
_X = {"left": 0, "top": 1, "bottom": 1, "right": 2}  # column of each position
_SLOT_CLASSES = (len(_SHAPES) + 1, len(_COLOURS) + 1, len(_SIZES) + 1)  # each with 0 = empty


def slot_targets(attributes: torch.Tensor) -> torch.Tensor:
    """What stands at each of the 4 positions: ``attributes (N, 2, 4)`` (as in ``Scenes``) ->
    ``(N, 4, 3) int64`` [shape, colour, size] + 1 per position, 0 where the position is empty."""
    check_tensor("attributes", attributes, dtype="integer", shape=(None, 2, 4))
    slots = torch.zeros(
        len(attributes), len(POSITIONS), 3, dtype=torch.long, device=attributes.device
    )
    for k in range(2):
        rows = (attributes[:, k, 0] >= 0).nonzero().squeeze(1)
        slots[rows, attributes[rows, k, 3]] = attributes[rows, k, :3] + 1
    return slots


def canonical_captions(scenes: Scenes) -> list[str]:
    """One fixed caption per scene, so that a caption can be predicted exactly.

    :mod:`mmlib.shapes` names two objects in a random order with a random true relation
    ("a red circle left of a blue square" or "a blue square right of a red circle"). Here the
    object further left comes first with "left of"; a top/bottom pair is "<top> above <bottom>".
    """
    if not isinstance(scenes, Scenes):
        raise TypeError(f"scenes must be a Scenes (from make_scenes), got {describe(scenes)}")
    attributes = scenes.attributes.clone()
    relations = scenes.relations.clone()
    for i in (scenes.num_objects == 2).nonzero().squeeze(1).tolist():
        a, b = (POSITIONS[p] for p in attributes[i, :, 3].tolist())
        if {a, b} == {"top", "bottom"}:
            swap, relations[i] = a == "bottom", RELATIONS.index("above")
        else:
            swap, relations[i] = _X[a] > _X[b], RELATIONS.index("left of")
        if swap:
            attributes[i] = attributes[i].flip(0)
    return captions_for(attributes, scenes.num_objects, relations)


def parse_caption(caption: str) -> dict | None:
    """Read a caption back: ``{"objects": [(size, colour, shape), ...], "where": str}`` where
    ``where`` is a position (one object) or a relation (two), or None if it does not parse."""
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a str, got {describe(caption)}")
    text = Tokenizer.normalise(caption)
    if match := _ONE.fullmatch(text):
        return {"objects": [match.groups()[:3]], "where": _WHERE[match.group(4)]}
    if match := _TWO.fullmatch(text):
        g = match.groups()
        return {"objects": [g[:3], g[4:]], "where": g[3]}
    return None


def caption_scores(generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Compare generated captions with reference captions (e.g. :func:`canonical_captions`).

    Returns floats in [0, 1]: ``exact`` (the whole caption matches), ``size``, ``colour`` and
    ``shape`` (fraction of reference objects whose attribute is right in the same slot of the
    generated caption), ``where`` (position or relation right), and ``attributes``, the mean
    over every attribute slot. A caption that does not parse gets every slot wrong.
    """
    generated, references = _check_string_pairs("generated", generated, "references", references)
    hits = {"size": [], "colour": [], "shape": [], "where": []}
    exact = []
    for got, want in zip(generated, references, strict=True):
        truth, guess = parse_caption(want), parse_caption(got)
        if truth is None:
            raise ValueError(f"references must hold captions from mmlib.shapes, got {want!r}")
        exact.append(Tokenizer.normalise(got) == Tokenizer.normalise(want))
        objects = guess["objects"] if guess else []
        for k, obj in enumerate(truth["objects"]):
            mine = objects[k] if k < len(objects) else (None, None, None)
            for name, a, b in zip(("size", "colour", "shape"), obj, mine, strict=True):
                hits[name].append(a == b)
        hits["where"].append(guess is not None and guess["where"] == truth["where"])
    scores = {"exact": sum(exact) / len(exact)}
    scores.update({name: sum(h) / len(h) for name, h in hits.items()})
    every = [x for h in hits.values() for x in h]
    scores["attributes"] = sum(every) / len(every)
    return scores


# ---------------------------------------------------------------------------- the model
#: How many numbers the decoder's prefix holds per place (18), the probabilities of each
#: shape, colour and size followed by a one-hot code of the place.
PREFIX_DIM = sum(_SLOT_CLASSES) + len(POSITIONS)
#: Where each reading sits in a place's prefix vector. ``prefix[..., PREFIX_PARTS["colour"]]``
#: holds the probabilities of "nothing here" and of each colour.
PREFIX_PARTS = {
    "shape": slice(0, _SLOT_CLASSES[0]),
    "colour": slice(_SLOT_CLASSES[0], _SLOT_CLASSES[0] + _SLOT_CLASSES[1]),
    "size": slice(_SLOT_CLASSES[0] + _SLOT_CLASSES[1], sum(_SLOT_CLASSES)),
    "place": slice(sum(_SLOT_CLASSES), PREFIX_DIM),
}


def set_reading(
    prefix: torch.Tensor, places: torch.Tensor, attribute: str, values: torch.Tensor
) -> torch.Tensor:
    """A counterfactual prefix: a copy of ``prefix (B, 4, PREFIX_DIM)`` in which row ``b`` reads,
    at place ``places[b]``, the ``attribute`` ("shape", "colour" or "size") with index
    ``values[b]`` (into ``ATTRIBUTES[attribute]``) for certain, whatever the image showed.
    ``places`` and ``values``: ``(B,) int64``. Nothing else of the prefix changes."""
    check_tensor("prefix", prefix, dtype="float", shape=(None, len(POSITIONS), PREFIX_DIM))
    if attribute not in ("shape", "colour", "size"):
        raise ValueError(f"attribute must be 'shape', 'colour' or 'size', got {attribute!r}")
    check_tensor("places", places, dtype="integer", shape=(len(prefix),))
    check_tensor("values", values, dtype="integer", shape=(len(prefix),))
    classes = len(ATTRIBUTES[attribute])
    if len(places) and not (0 <= int(places.min()) and int(places.max()) < len(POSITIONS)):
        raise ValueError(f"places must lie in [0, {len(POSITIONS) - 1}], got {places.tolist()}")
    if len(values) and not (0 <= int(values.min()) and int(values.max()) < classes):
        raise ValueError(f"values must lie in [0, {classes - 1}], got {values.tolist()}")
    edited = prefix.clone()
    part = PREFIX_PARTS[attribute]
    reading = F.one_hot(values.to(prefix.device) + 1, classes + 1).to(prefix.dtype)
    rows = torch.arange(len(prefix), device=prefix.device)
    edited[rows, places.to(prefix.device), part] = reading
    return edited


class VisualDialogueModel(nn.Module):
    """An :class:`~mmlib.encoders.ImageEncoder` that reads what stands at each place, and a
    :class:`~mmlib.gpt.GPT` that talks about it. Images and a conversation -> next-token logits.

    It is trained in two stages, as vision-language models with a frozen image encoder are:

    1. *perception*: :meth:`perception_loss` trains the encoder and a small attribute head to
       read, at each place of the shapes world (left, right, top, bottom), the shape, colour and
       size of the object there, or "nothing here";
    2. *language*: the GPT (``self.gpt``) trains on conversations. Its prefix is what the
       encoder read (:meth:`image_prefix`), one vector per place ``(B, 4, PREFIX_DIM)``: the
       probabilities of each shape, colour and size (a *concept bottleneck*) and a one-hot code
       of the place. No gradient flows back into the encoder, which stays as stage 1 left it,
       so the readings of the training images can be computed once for the whole stage.

    ``max_tokens`` is the longest conversation (in tokens) it can read; ``init_std`` is the
    GPT's initial weight spread (:class:`~mmlib.gpt.GPTConfig`), by default ``1 / sqrt(n_embd)``
    (fan-in scaling, 0.144 at the width of 48) rather than GPT-2's 0.02, which suits a width of
    768 and leaves a tiny GPT's attention flat for a long time. Two heads, not four: at this
    width the CPU attention kernel costs about the same per head whatever its size.
    """

    def __init__(
        self,
        vocab_size: int,
        n_embd: int = 48,
        n_layer: int = 2,
        n_head: int = 2,
        width: int = 8,
        max_tokens: int = 24,
        dropout: float = 0.0,
        init_std: float | None = None,
    ):
        super().__init__()
        check_int("width", width, minimum=1)
        check_int("n_embd", n_embd, minimum=1)
        if init_std is None:  # fan-in scaling: unit-size inputs give unit-size outputs
            init_std = 1 / math.sqrt(n_embd)
        check_int("max_tokens", max_tokens, minimum=2)
        places = len(POSITIONS)
        self.encoder = ImageEncoder(dim=places * 4 * width, width=width)
        self.attribute_head = nn.Linear(4 * width, sum(_SLOT_CLASSES))
        config = GPTConfig(
            vocab_size=vocab_size,
            block_size=places + max_tokens,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            prefix_dim=PREFIX_DIM,
            dropout=dropout,
            init_std=init_std,
        )
        self.gpt = GPT(config)
        self.max_tokens = max_tokens

    def slots(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, 32, 32)`` -> one feature vector per place ``(B, 4, 4 * width)``."""
        check_images("images", images)
        patches = self.encoder.patches((images - IMAGE_MEAN) / IMAGE_STD)  # (B, 16, 4w)
        return self.encoder.proj(patches.flatten(1)).view(len(images), len(POSITIONS), -1)

    def attribute_logits(self, images: torch.Tensor) -> list[torch.Tensor]:
        """For each place, logits over shape, colour and size (class 0: nothing there),
        ``[(B, 4, 4), (B, 4, 7), (B, 4, 3)]``."""
        return list(self.attribute_head(self.slots(images)).split(_SLOT_CLASSES, dim=-1))

    def perception_loss(self, images: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """Stage 1: the summed cross-entropy of reading each place's shape, colour and size,
        for ``images (B, 3, 32, 32)`` and the scenes' ``attributes (B, 2, 4)``."""
        check_images("images", images)
        check_tensor("attributes", attributes, dtype="integer", shape=(len(images), 2, 4))
        wanted = slot_targets(attributes)  # (B, 4, 3)
        return sum(
            F.cross_entropy(logits.flatten(0, 1), wanted[..., k].flatten())
            for k, logits in enumerate(self.attribute_logits(images))
        )

    @torch.no_grad()
    def image_prefix(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, 32, 32)`` -> the GPT's prefix ``(B, 4, PREFIX_DIM)``: per place, the
        probabilities of its shape, colour and size, then a one-hot code of the place.
        Computed without gradient: the language stage leaves the encoder as it is."""
        probabilities = [F.softmax(logits, dim=-1) for logits in self.attribute_logits(images)]
        place = torch.eye(len(POSITIONS), device=images.device).expand(len(images), -1, -1)
        return torch.cat([*probabilities, place], dim=-1)

    def forward(
        self,
        images: torch.Tensor,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``images (B, 3, 32, 32)`` and ``idx (B, T)`` -> logits ``(B, T, vocab)``, and when
        ``targets (B, T)`` (``-100`` ignored) are given, the mean cross-entropy of the answer
        tokens. In the language stage the encoder does not change, so its readings can be
        computed once with :meth:`image_prefix` and passed to ``self.gpt`` directly."""
        check_tensor("idx", idx, dtype="integer")
        if idx.ndim != 2 or idx.shape[0] != len(images):
            raise ValueError(
                f"idx must have shape (B, T) with B = {len(images)} images, got {describe(idx)}"
            )
        return self.gpt(idx, self.image_prefix(images), targets)  # prefix (B, 4, PREFIX_DIM)

    @torch.no_grad()
    def answer(
        self,
        images: torch.Tensor,
        questions: Sequence[str],
        tokenizer: Tokenizer,
        history: Sequence[Sequence[tuple[str, str]]] | None = None,
        max_new_tokens: int = 2,
        temperature: float | None = None,
        seed: int = 0,
    ) -> list[str]:
        """Answers to ``questions`` (one per image; ``""`` asks for a caption), each after its
        ``history`` of earlier (question, answer) turns, which is part of the context.

        Greedy (argmax) decoding, or sampling at ``temperature`` from a generator seeded with
        ``seed``. Prompts of equal length are decoded together; each answer is cut at its
        ``<eos>``. Returns one str per image. The same as :meth:`answer_prefix` on
        ``image_prefix(images)``."""
        check_images("images", images, finite=True)
        was_training = self.training
        self.eval()
        try:
            prefix = self.image_prefix(images.to(next(self.parameters()).device))
        finally:
            self.train(was_training)
        return self._answer(
            prefix, questions, tokenizer, history, max_new_tokens, temperature, seed, "images"
        )

    @torch.no_grad()
    def answer_prefix(
        self,
        prefix: torch.Tensor,
        questions: Sequence[str],
        tokenizer: Tokenizer,
        history: Sequence[Sequence[tuple[str, str]]] | None = None,
        max_new_tokens: int = 2,
        temperature: float | None = None,
        seed: int = 0,
    ) -> list[str]:
        """:meth:`answer` from given readings ``prefix (B, 4, PREFIX_DIM)`` instead of images:
        what the decoder says when the encoder's readings are these, for example readings edited
        with :func:`set_reading` (a counterfactual probe)."""
        check_tensor("prefix", prefix, dtype="float", shape=(None, len(POSITIONS), PREFIX_DIM))
        return self._answer(
            prefix, questions, tokenizer, history, max_new_tokens, temperature, seed, "prefix"
        )

    def _answer(self, prefix, questions, tokenizer, history, max_new_tokens, temperature, seed,
                source: str) -> list[str]:  # fmt: skip
        questions = check_strings("questions", questions)
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a Tokenizer, got {describe(tokenizer)}")
        if tokenizer.vocab_size != self.gpt.config.vocab_size:
            raise ValueError(
                f"tokenizer must have the model's vocab_size {self.gpt.config.vocab_size}, "
                f"got {tokenizer.vocab_size}"
            )
        check_int("max_new_tokens", max_new_tokens, minimum=1)
        if temperature is not None:
            check_float("temperature", temperature, low=1e-3)
        check_int("seed", seed, minimum=0)
        if history is None:
            history = [[] for _ in questions]
        if isinstance(history, str) or not isinstance(history, Sequence):
            raise TypeError(f"history must be a list of dialogues or None, got {describe(history)}")
        history = [_check_dialogue(f"history[{k}]", h) for k, h in enumerate(history)]
        if not len(prefix) == len(questions) == len(history):
            raise ValueError(
                f"{source}, questions and history must have the same length, got "
                f"{len(prefix)}, {len(questions)} and {len(history)}"
            )
        prompts = [
            _dialogue_ids(tokenizer, h)[0] + tokenizer.encode(q) + [tokenizer.bos_id]
            for q, h in zip(questions, history, strict=True)
        ]
        longest = max(len(p) for p in prompts) + max_new_tokens - 1
        if longest > self.max_tokens:
            raise ValueError(
                f"max_new_tokens must leave the prompt room: prompt + max_new_tokens - 1 must be "
                f"<= max_tokens {self.max_tokens}, got {longest}"
            )
        allowed = torch.ones(tokenizer.vocab_size, dtype=torch.bool)
        allowed[[tokenizer.pad_id, tokenizer.bos_id, tokenizer.unk_id]] = False
        generator = torch.Generator().manual_seed(seed)
        device = next(self.parameters()).device
        prefix = prefix.to(device)
        was_training = self.training
        self.eval()
        answers = [""] * len(prompts)
        try:
            for length in sorted({len(p) for p in prompts}):
                rows = [k for k, p in enumerate(prompts) if len(p) == length]
                idx = torch.tensor([prompts[k] for k in rows], device=device)  # (b, length)
                out = self.gpt.generate(
                    idx,
                    max_new_tokens,
                    prefix=prefix[rows],
                    temperature=1.0 if temperature is None else temperature,
                    greedy=temperature is None,
                    allowed=allowed,
                    generator=generator,
                )
                for k, ids in zip(rows, out[:, length:].tolist(), strict=True):
                    ids = ids[: ids.index(tokenizer.eos_id)] if tokenizer.eos_id in ids else ids
                    answers[k] = tokenizer.decode(ids)
        finally:
            self.train(was_training)
        return answers


@torch.no_grad()
def slot_accuracy(
    model: VisualDialogueModel, images: torch.Tensor, attributes: torch.Tensor
) -> dict[str, float]:
    """How well the auxiliary head of ``model`` reads the objects of the scenes.

    ``images (N, 3, 32, 32)`` and their ``attributes (N, 2, 4)`` (as in ``Scenes``). Returns
    ``{"shape": float, "colour": float, "size": float, "empty": float}``: the fraction of
    occupied places whose attribute is read right, and of empty places read as empty.
    """
    if not isinstance(model, VisualDialogueModel):
        raise TypeError(f"model must be a VisualDialogueModel, got {describe(model)}")
    check_images("images", images, finite=True)
    check_tensor("attributes", attributes, dtype="integer", shape=(len(images), 2, 4))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits = model.attribute_logits(images.to(device))
    finally:
        model.train(was_training)
    wanted = slot_targets(attributes).to(device)  # (N, 4, 3)
    occupied = wanted[..., 0] > 0  # (N, 4)
    scores = {}
    for k, name in enumerate(("shape", "colour", "size")):
        right = logits[k].argmax(-1) == wanted[..., k]
        scores[name] = float(right[occupied].float().mean())
    scores["empty"] = float((logits[0].argmax(-1) == 0)[~occupied].float().mean())
    return scores

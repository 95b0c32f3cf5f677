"""Visual dialogue: a tiny GPT that answers questions about an image, over several turns.

What the image encoder reads at each place of the shapes world (one vector per place) is the
*prefix* of a decoder-only transformer (:class:`mmlib.models.gpt.GPT`); the conversation follows as
tokens. Every turn reads ``question <bos> answer <eos>``, so one sequence can hold a whole
conversation, and a caption is simply the answer to the empty question:
``<bos> a small red circle on the left <eos>``.
The loss is taken on answer tokens only: the model is never asked to predict the user's words.

Shapes: B batch, T tokens, 4 prefix vectors (one per place) of PREFIX_DIM = 18 numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.data.dialogues import check_dialogue, dialogue_ids
from mmlib.data.tasks import slot_targets
from mmlib.data.tokenizer import Tokenizer
from mmlib.data.world import ATTRIBUTES, POSITIONS
from mmlib.encoders import ImageEncoder
from mmlib.models.gpt import GPT, GPTConfig
from mmlib.modes import evaluating
from mmlib.validate import (
    check_choice,
    check_float,
    check_images,
    check_int,
    check_ints,
    check_strings,
    check_tensor,
    check_type,
    require,
)

__all__ = ["PREFIX_DIM", "PREFIX_PARTS", "VisualDialogueModel", "set_reading"]

# Pixel mean and spread of the shapes world (mostly black background): the encoder
# standardises its input with them.
IMAGE_MEAN, IMAGE_STD = 0.04, 0.16


# ---------------------------------------------------------------------------- text


# ---------------------------------------------------------------------------- captions
_SIZES, _COLOURS, _SHAPES = ATTRIBUTES["size"], ATTRIBUTES["colour"], ATTRIBUTES["shape"]
_SLOT_CLASSES = (len(_SHAPES) + 1, len(_COLOURS) + 1, len(_SIZES) + 1)  # each with 0 = empty


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


def _check_reading(prefix, places, attribute, values) -> None:
    """Check :func:`set_reading`'s arguments."""
    check_tensor("prefix", prefix, dtype="float", shape=(None, len(POSITIONS), PREFIX_DIM))
    check_choice("attribute", attribute, ("shape", "colour", "size"))
    classes = len(ATTRIBUTES[attribute])
    for name, x, n in ("places", places, len(POSITIONS)), ("values", values, classes):
        check_tensor(name, x, dtype="integer", shape=(len(prefix),))
        require(0 <= int(x.min()) and int(x.max()) < n, name, f"in [0, {n - 1}]", x.tolist())


def set_reading(
    prefix: torch.Tensor, places: torch.Tensor, attribute: str, values: torch.Tensor
) -> torch.Tensor:
    """A counterfactual prefix: a copy of ``prefix (B, 4, PREFIX_DIM)`` in which row ``b`` reads,
    at place ``places[b]``, the ``attribute`` ("shape", "colour" or "size") with index
    ``values[b]`` (into ``ATTRIBUTES[attribute]``) for certain, whatever the image showed.
    ``places`` and ``values``: ``(B,) int64``. Nothing else of the prefix changes."""
    _check_reading(prefix, places, attribute, values)
    classes = len(ATTRIBUTES[attribute])
    edited = prefix.clone()
    part = PREFIX_PARTS[attribute]
    reading = F.one_hot(values.to(prefix.device) + 1, classes + 1).to(prefix.dtype)
    rows = torch.arange(len(prefix), device=prefix.device)
    edited[rows, places.to(prefix.device), part] = reading
    return edited


class VisualDialogueModel(nn.Module):
    """An :class:`~mmlib.encoders.ImageEncoder` that reads what stands at each place, and a
    :class:`~mmlib.models.gpt.GPT` that talks about it. Images and a conversation -> next-token
    logits.

    It is trained in two stages, as vision-language models with a frozen image encoder are:

    1. *perception*: :meth:`perception_loss` trains the encoder and a small attribute head to
       read, at each place of the shapes world (left, right, top, bottom), the shape, colour and
       size of the object there, or "nothing here";
    2. *language*: the GPT (``self.gpt``) trains on conversations. Its prefix is what the
       encoder read (:meth:`image_prefix`), one vector per place ``(B, 4, PREFIX_DIM)``: the
       probabilities of each shape, colour and size (a *concept bottleneck*) and a one-hot code
       of the place. No gradient flows back into the encoder, which stays as stage 1 left it,
       so the readings of the training images can be computed once for the whole stage.

    ``max_tokens`` is the longest conversation (in tokens) it can read; ``init_std`` is the GPT's
    initial weight spread (:class:`~mmlib.models.gpt.GPTConfig`), by default ``1 / sqrt(n_embd)``
    (fan-in scaling, 0.144 at the width of 48) rather than GPT-2's 0.02, which suits a width of 768
    and leaves a tiny GPT's attention flat for a long time. Two heads, not four: at this width the
    CPU attention kernel costs about the same per head whatever its size.
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
        check_ints(minimum=1, width=width, n_embd=n_embd)
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
        with evaluating(self):
            prefix = self.image_prefix(images.to(next(self.parameters()).device))
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
        check_type("tokenizer", tokenizer, Tokenizer)
        vocab = self.gpt.config.vocab_size
        require(len(tokenizer) == vocab, "tokenizer", f"of vocab_size {vocab}", len(tokenizer))
        check_ints(minimum=0, max_new_tokens=max_new_tokens, seed=seed)  # generate wants >= 1
        check_float("temperature", 1.0 if temperature is None else temperature, low=1e-3)
        history = [[] for _ in questions] if history is None else history
        check_type("history", history, Sequence, "list of dialogues or None")
        history = [check_dialogue(f"history[{k}]", h) for k, h in enumerate(history)]
        sizes = (len(prefix), len(questions), len(history))
        require(len(set(sizes)) == 1, f"{source}, questions and history", "one length", sizes)
        prompts = [
            dialogue_ids(tokenizer, h)[0] + tokenizer.encode(q) + [tokenizer.bos_id]
            for q, h in zip(questions, history, strict=True)
        ]
        room = self.max_tokens + 1 - max(len(p) for p in prompts)  # room left for new tokens
        require(max_new_tokens <= room, "max_new_tokens", f"<= {room} here", max_new_tokens)
        allowed = torch.ones(tokenizer.vocab_size, dtype=torch.bool)
        allowed[[tokenizer.pad_id, tokenizer.bos_id, tokenizer.unk_id]] = False
        generator = torch.Generator().manual_seed(seed)
        device = next(self.parameters()).device
        prefix = prefix.to(device)
        answers = [""] * len(prompts)
        with evaluating(self):
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
        return answers

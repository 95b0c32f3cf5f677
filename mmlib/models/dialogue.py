"""Visual dialogue: a tiny GPT that answers questions about an image, over several turns.

What the image encoder sees at each place of the shapes world (one feature vector per place)
goes through a small projector to become four *visual tokens*, placed before the tokens of a
decoder-only transformer (:class:`mmlib.models.gpt.GPT`): the recipe of LLaVA (Liu et al.,
NeurIPS 2023) at toy scale. Every turn reads ``question <bos> answer <eos>``, so one
sequence can hold a whole conversation, and a caption is the answer to the empty question:
``<bos> a small red circle on the left <eos>``.
The loss is taken on answer tokens only: the model is never asked to predict the user's words.

Shapes: B batch, T tokens, 4 places, D = 4 * width region features, C the GPT's width.
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
from mmlib.models.vlm import Projector
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

__all__ = ["STAGES", "VisualDialogueModel", "transplant"]

# Pixel mean and spread of the shapes world (mostly black background): the encoder
# standardises its input with them.
IMAGE_MEAN, IMAGE_STD = 0.04, 0.16


_SIZES, _COLOURS, _SHAPES = ATTRIBUTES["size"], ATTRIBUTES["colour"], ATTRIBUTES["shape"]
_SLOT_CLASSES = (len(_SHAPES) + 1, len(_COLOURS) + 1, len(_SIZES) + 1)  # each with 0 = empty


# ---------------------------------------------------------------------------- the model
#: The parts that train in each stage (:meth:`VisualDialogueModel.set_stage`); the rest is
#: frozen. The encoder trains only in the first, as LLaVA keeps its CLIP encoder frozen.
STAGES = {
    "perception": ("encoder", "attribute_head"),
    "text": ("gpt",),
    "align": ("projector",),
    "instruct": ("projector", "gpt"),
}


def transplant(features: torch.Tensor, places: torch.Tensor, donors: torch.Tensor) -> torch.Tensor:
    """A counterfactual: a copy of ``features (B, 4, D)`` in which row ``b`` holds, at place
    ``places[b]`` (``(B,) int64``), the vector ``donors[b]`` (``(B, D)``), for example what the
    encoder saw at that place in another image. Nothing else changes."""
    check_tensor("features", features, dtype="float", shape=(None, len(POSITIONS), None))
    check_tensor("places", places, dtype="integer", shape=(len(features),))
    check_tensor("donors", donors, dtype="float", shape=(len(features), features.shape[2]))
    n = len(POSITIONS)
    require(0 <= int(places.min()) and int(places.max()) < n, "places", f"in [0, {n - 1}]", places)
    edited = features.clone()
    edited[torch.arange(len(features)), places.to(features.device)] = donors.to(features)
    return edited


class VisualDialogueModel(nn.Module):
    """LLaVA's recipe in miniature: an :class:`~mmlib.encoders.ImageEncoder`, a projector and a
    :class:`~mmlib.models.gpt.GPT`. Images and a conversation -> next-token logits.

    - The encoder's 16 patch features are mapped by a linear layer to one feature vector per
      place of the shapes world (left, right, top, bottom): four *region features*
      ``(B, 4, 4 * width)``, layer-normalised (:meth:`region_features`).
    - The projector (:class:`~mmlib.models.vlm.Projector`, Linear-GELU-Linear as in LLaVA-1.5,
      plus a learned vector per place) maps each to the GPT's width: four *visual tokens*
      before the conversation's tokens, which keep the positions of text-only training.

    It trains in four stages, each with only ``STAGES[stage]`` trainable (:meth:`set_stage`):

    1. ``perception``: the encoder and a small attribute head learn to read, at each place,
       the shape, colour and size of the object there, or "nothing here"
       (:meth:`perception_loss`); this stands in for CLIP's pretraining;
    2. ``text``: the GPT alone learns the language of the conversations, with no image;
    3. ``align``: the projector alone learns image -> caption;
    4. ``instruct``: the projector and the GPT learn the conversations, loss on answers only.

    From stage 2 on the encoder is frozen, so the region features of the training images can
    be computed once. ``max_tokens`` is the longest conversation (in tokens) it can read;
    ``init_std`` is the GPT's initial weight spread (:class:`~mmlib.models.gpt.GPTConfig`), by
    default ``1 / sqrt(n_embd)`` (fan-in scaling, 0.144 at the width of 48) rather than
    GPT-2's 0.02, which suits a width of 768 and leaves a tiny GPT's attention flat for a long
    time; the projector's place vectors start at the same spread.
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
            block_size=max_tokens,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            dropout=dropout,
            init_std=init_std,
        )
        self.gpt = GPT(config)
        self.projector = Projector(4 * width, n_embd, places, kind="mlp", position_std=init_std)
        self.max_tokens = max_tokens
        self.set_stage("perception")

    def set_stage(self, stage: str) -> str:
        """Let only the stage's parts train (``STAGES[stage]``); freeze the rest."""
        check_choice("stage", stage, STAGES)
        for part in ("encoder", "attribute_head", "projector", "gpt"):
            getattr(self, part).requires_grad_(part in STAGES[stage])
        self.stage = stage
        return stage

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
    def region_features(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, 32, 32)`` -> the frozen encoder's region features ``(B, 4, 4w)``,
        each layer-normalised (zero mean, unit spread), computed without gradient."""
        features = self.slots(images)
        return F.layer_norm(features, features.shape[-1:])

    def talk(
        self, features: torch.Tensor, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Region features ``(B, 4, 4w)`` -> projector -> visual tokens, then the GPT over them
        and the tokens ``idx (B, T)``: logits ``(B, T, vocab)``, and the loss with targets."""
        self._check_features(features)
        return self.gpt(idx, targets=targets, prefix_embeds=self.projector(features))

    def _check_features(self, features: torch.Tensor) -> None:
        dim = self.projector.net[0].in_features
        check_tensor("features", features, dtype="float", shape=(None, len(POSITIONS), dim))

    def forward(
        self,
        images: torch.Tensor,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``images (B, 3, 32, 32)`` and ``idx (B, T)`` -> logits ``(B, T, vocab)``, and when
        ``targets (B, T)`` (``-100`` ignored) are given, the mean cross-entropy of the answer
        tokens. The encoder is frozen after stage 1, so training can compute the region
        features once with :meth:`region_features` and call :meth:`talk` directly."""
        return self.talk(self.region_features(images), idx, targets)

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
        ``<eos>``. Returns one str per image. The same as :meth:`answer_features` on
        ``region_features(images)``."""
        check_images("images", images, finite=True)
        with evaluating(self):
            features = self.region_features(images.to(next(self.parameters()).device))
        return self._answer(
            features, questions, tokenizer, history, max_new_tokens, temperature, seed, "images"
        )

    @torch.no_grad()
    def answer_features(
        self,
        features: torch.Tensor,
        questions: Sequence[str],
        tokenizer: Tokenizer,
        history: Sequence[Sequence[tuple[str, str]]] | None = None,
        max_new_tokens: int = 2,
        temperature: float | None = None,
        seed: int = 0,
    ) -> list[str]:
        """:meth:`answer` from given region features ``(B, 4, 4w)`` instead of images: what
        the model says when the encoder saw these, for example features edited with
        :func:`transplant` (a counterfactual probe)."""
        self._check_features(features)
        return self._answer(
            features, questions, tokenizer, history, max_new_tokens, temperature, seed, "features"
        )

    def _answer(self, features, questions, tokenizer, history, max_new_tokens, temperature, seed,
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
        sizes = (len(features), len(questions), len(history))
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
        features = features.to(device)
        answers = [""] * len(prompts)
        with evaluating(self):
            for length in sorted({len(p) for p in prompts}):
                rows = [k for k, p in enumerate(prompts) if len(p) == length]
                idx = torch.tensor([prompts[k] for k in rows], device=device)  # (b, length)
                out = self.gpt.generate(
                    idx,
                    max_new_tokens,
                    prefix_embeds=self.projector(features[rows]),
                    temperature=1.0 if temperature is None else temperature,
                    greedy=temperature is None,
                    allowed=allowed,
                    generator=generator,
                )
                for k, ids in zip(rows, out[:, length:].tolist(), strict=True):
                    ids = ids[: ids.index(tokenizer.eos_id)] if tokenizer.eos_id in ids else ids
                    answers[k] = tokenizer.decode(ids)
        return answers

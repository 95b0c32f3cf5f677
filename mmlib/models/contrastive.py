"""CLIP-style contrastive pretraining: a dual encoder and the symmetric InfoNCE loss.

Images and captions are embedded into one space; matching pairs should score higher than all
other pairs in the batch. The temperature is learned, stored as a log, and clamped so that
logits are scaled by at most 100, as in CLIP (Radford et al. 2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.encoders import ImageEncoder, TextEncoder
from mmlib.validate import (
    check_float,
    check_images,
    check_same_batch,
    check_strings,
    check_tensor,
    check_type,
    require,
)

__all__ = ["DualEncoder", "MAX_LOGIT_SCALE", "caption_ids", "clip_loss", "pair_similarity"]

MAX_LOGIT_SCALE = math.log(100.0)


class DualEncoder(nn.Module):
    """Two towers into one ``dim``-sized space, with a learnable temperature.

    ``forward(images (B, 3, 32, 32), tokens (B, T), lengths (B,))`` returns the image-to-text
    logits ``(B, B)``: ``exp(logit_scale) * image_emb @ text_emb.T`` with unit-length embeddings.
    """

    def __init__(
        self, vocab_size: int, dim: int = 64, width: int = 16, init_temperature: float = 0.07
    ):
        super().__init__()
        check_float("init_temperature", init_temperature, low=0.01, high=1.0)
        self.image_encoder = ImageEncoder(dim=dim, width=width)
        self.text_encoder = TextEncoder(vocab_size, dim=dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 32, 32)`` -> unit-length embeddings ``(B, dim)``."""
        return F.normalize(self.image_encoder(images), dim=-1)

    def encode_texts(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None):
        """``(B, T)`` token ids -> unit-length embeddings ``(B, dim)``."""
        return F.normalize(self.text_encoder(tokens, lengths), dim=-1)

    def scale(self) -> torch.Tensor:
        """The logit scale ``1 / temperature``, clamped to ``[1, 100]`` as in CLIP."""
        return self.logit_scale.clamp(0.0, MAX_LOGIT_SCALE).exp()

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        image_emb, text_emb = self.encode_images(images), self.encode_texts(tokens, lengths)
        check_same_batch(images=images, tokens=tokens)  # the encoders check each one's form
        return self.scale() * image_emb @ text_emb.T  # (B_images, B_texts)


def caption_ids(captions: Sequence[str]) -> torch.Tensor:
    """Integer id per caption, equal ids for identical captions: ``(B,)`` int64."""
    check_strings("captions", captions)
    index: dict[str, int] = {}
    return torch.tensor([index.setdefault(c, len(index)) for c in captions], dtype=torch.long)


def clip_loss(logits: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over image-to-text ``logits (B, B)``.

    Without ``ids`` the targets are the diagonal, as in CLIP. With ``ids (B,)`` (from
    :func:`caption_ids`), examples that share a caption are *all* correct partners: the target
    of each row is spread evenly over them, so a duplicate caption is never a false negative.
    """
    check_tensor("logits", logits, ndim=2, dtype="float")
    require(logits.shape[0] == logits.shape[1], "logits", "square (B, B)", logits)
    if ids is None:
        targets = torch.eye(len(logits), device=logits.device)
    else:
        check_tensor("ids", ids, shape=(len(logits),), dtype="integer")
        same = (ids.view(-1, 1) == ids.view(1, -1)).to(logits.device, logits.dtype)
        targets = same / same.sum(dim=1, keepdim=True)
    image_to_text = F.cross_entropy(logits, targets)
    text_to_image = F.cross_entropy(logits.T, targets.T)
    return (image_to_text + text_to_image) / 2


def _check_pairs(model: object, images: object, tokens: object) -> None:
    check_type("model", model, DualEncoder)
    check_images("images", images, finite=True)  # an evaluation: it sees each pair once
    check_same_batch(images=images, tokens=check_tensor("tokens", tokens, ndim=2))


@torch.no_grad()
def pair_similarity(
    model: DualEncoder,
    images: torch.Tensor,
    tokens: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cosine similarity of each image with *its own* caption in a joint space: ``(B,)`` float.

    ``images (B, 3, 32, 32)``, ``tokens (B, T)``, ``lengths (B,)``; row ``i`` pairs image ``i``
    with caption ``i`` (the diagonal of ``model(images, tokens)`` without the scale).
    """
    _check_pairs(model, images, tokens)
    image_emb = model.encode_images(images)  # (B, D), unit length
    text_emb = model.encode_texts(tokens, lengths)  # (B, D), unit length
    return (image_emb * text_emb).sum(dim=1)

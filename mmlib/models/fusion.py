"""Where text and image meet: unimodal baselines, early fusion, late fusion, a joint space.

:class:`FusionClassifier` is one classifier with four ``mode`` values, all built on the shared
encoders of :mod:`mmlib.encoders`:

- ``"text"``: the caption alone, ``TextEncoder`` then an MLP head. Blind to the image.
- ``"image"``: the image alone, ``ImageEncoder`` then an MLP head. Deaf to the caption.
- ``"late"``: both encoders run separately; their feature vectors are concatenated and an MLP
  head reads the pair (the article's fusion module, with a classification head on top).
- ``"early"``: the caption's features are broadcast over the pixel grid as extra input
  channels, so the image encoder's very first convolution already sees the text.

The third family, a joint embedding space, is :class:`mmlib.models.contrastive.DualEncoder`; to use
it as a classifier, :func:`~mmlib.models.contrastive.pair_similarity` scores each (image, caption)
pair and :func:`~mmlib.evaluation.metrics.best_threshold` picks the score above which a pair counts
as a match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.encoders import ImageEncoder, TextEncoder
from mmlib.validate import (
    check_choice,
    check_images,
    check_ints,
    check_same_batch,
    check_tensor,
    describe,
)

__all__ = ["FusionClassifier", "MODES", "classification_loss"]

MODES = ("text", "image", "early", "late")


class FusionClassifier(nn.Module):
    """A text, image, early-fusion or late-fusion classifier.

    ``forward(images (B, 3, 32, 32), tokens (B, T), lengths (B,) or None)`` returns logits
    ``(B, num_classes)`` in every mode; ``"text"`` ignores ``images`` and ``"image"`` ignores
    ``tokens`` and ``lengths`` (pass ``None``).

    ``dim``: size of each encoder's feature vector; ``width``: channels of the image encoder's
    first block; ``hidden``: width of the two-layer MLP head; ``text_channels``: in early
    fusion, how many numbers the text encoder produces, each broadcast as one extra input plane.
    """

    def __init__(
        self,
        mode: str,
        vocab_size: int,
        num_classes: int = 2,
        dim: int = 64,
        width: int = 16,
        hidden: int = 128,
        text_channels: int = 8,
    ):
        super().__init__()
        self.mode = check_choice("mode", mode, MODES)
        check_ints(minimum=2, vocab_size=vocab_size, num_classes=num_classes)
        check_ints(minimum=1, dim=dim, width=width, hidden=hidden, text_channels=text_channels)
        self.num_classes = num_classes
        text_dim = text_channels if mode == "early" else dim
        self.text_encoder = TextEncoder(vocab_size, dim=text_dim) if mode != "image" else None
        self.image_encoder = ImageEncoder(dim=dim, width=width) if mode != "text" else None
        if mode == "early":  # the first convolution reads 3 colour planes + text_channels planes
            self.image_encoder.features[0] = nn.Conv2d(3 + text_channels, width, 3, padding=1)
        features = 2 * dim if mode == "late" else dim
        self.head = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def fused_features(
        self,
        images: torch.Tensor | None,
        tokens: torch.Tensor | None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The vector the head reads: ``(B, dim)``, or ``(B, 2 * dim)`` in late fusion."""
        _check_pair(self.mode, images, tokens)
        if self.mode == "image":
            return self.image_encoder(images)  # (B, dim)
        text = self.text_encoder(tokens, lengths)  # (B, dim) or (B, text_channels)
        if self.mode == "text":
            return text
        if self.mode == "late":
            return torch.cat([text, self.image_encoder(images)], dim=1)  # (B, 2 * dim)
        b, _, h, w = images.shape
        planes = text.view(b, -1, 1, 1).expand(-1, -1, h, w)  # (B, text_channels, H, W)
        grid = self.image_encoder.grid(torch.cat([images, planes], dim=1))  # (B, 4w, 4, 4)
        return self.image_encoder.proj(grid.flatten(1))  # (B, dim)

    def forward(
        self,
        images: torch.Tensor | None,
        tokens: torch.Tensor | None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.head(self.fused_features(images, tokens, lengths))  # (B, num_classes)


def _check_pair(mode: str, images: object, tokens: object) -> None:
    """Fusion reads both inputs, which must share their batch size; the encoders check the rest."""
    if mode in ("early", "late"):
        check_images("images", images)
        check_same_batch(images=images, tokens=check_tensor("tokens", tokens))


def classification_loss(model: nn.Module, batch: object) -> torch.Tensor:
    """The loss that :func:`mmlib.training.loop.train` needs for a (image, caption) classifier.

    ``batch`` is ``(images (B, 3, H, W), tokens (B, T), lengths (B,), labels (B,))``; returns
    the mean cross-entropy of ``model(images, tokens, lengths)`` ``(B, C)`` against ``labels``.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) != 4:
        raise TypeError(f"batch must be (images, tokens, lengths, labels), got {describe(batch)}")
    images, tokens, lengths, labels = batch
    check_tensor("labels", labels, ndim=1, dtype="integer")
    return F.cross_entropy(model(images, tokens, lengths), labels)

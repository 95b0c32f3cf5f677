"""Missing modalities: modality dropout, and a late-fusion classifier that survives it.

A late-fusion model trained on complete (image, caption) pairs learns whatever mix of the two
is easiest; if one modality is missing at test time, its features are zeros the model never
saw, and its accuracy can collapse. *Modality dropout* is the standard fix: during training,
zero one modality's features for a random share of the examples, so that the model must also
answer from each modality alone.

- :func:`drop_modalities` zeroes, per example, the image features, the text features, or
  neither; never both.
- :class:`DropoutFusionClassifier` is late fusion with modality dropout built in (active only
  in ``train()`` mode); pass ``None`` for a missing modality at test time.
"""

from __future__ import annotations

import torch

from mmlib.models.fusion import FusionClassifier
from mmlib.validate import check_float, check_same_batch, check_tensor, check_type, require

__all__ = ["DropoutFusionClassifier", "drop_modalities"]


def drop_modalities(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    p: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero one modality's features for a share ``p`` of the examples; return both, masked.

    ``image_features (B, D_image)`` and ``text_features (B, D_text)``: one feature row per
    example. Each example independently loses its image features with probability ``p / 2``,
    its text features with probability ``p / 2``, and keeps both otherwise, so no example
    loses both. ``p`` is in ``[0, 1]``; ``p=0`` returns the inputs unchanged. The kept rows
    are not rescaled. ``generator`` (a CPU ``torch.Generator``) makes the draw repeatable.
    """
    batch = _check_drop(image_features, text_features, p, generator)
    if p == 0.0:
        return image_features, text_features
    u = torch.rand(batch, generator=generator).to(image_features.device)  # (B,) in [0, 1)
    keep_image = (u >= p / 2).to(image_features.dtype).unsqueeze(1)  # (B, 1): u < p/2 drops it
    keep_text = ((u < p / 2) | (u >= p)).to(text_features.dtype).unsqueeze(1)  # p/2 <= u < p
    return image_features * keep_image, text_features * keep_text


def _check_drop(image_features, text_features, p, generator) -> int:
    """:func:`drop_modalities`' arguments; returns the batch size."""
    check_tensor("image_features", image_features, ndim=2, dtype="float")
    check_tensor("text_features", text_features, ndim=2, dtype="float")
    check_float("p", p, low=0.0, high=1.0)
    check_type("generator", generator, (torch.Generator, type(None)), "torch.Generator or None")
    return check_same_batch(image_features=image_features, text_features=text_features)


class DropoutFusionClassifier(FusionClassifier):
    """Late fusion with modality dropout: ``forward(images, tokens, lengths) -> (B, C)``.

    :class:`mmlib.models.fusion.FusionClassifier` in ``"late"`` mode (same encoders, same head, text
    features first), with two additions:

    - ``images=None`` (no image) or ``tokens=None`` (no text): that modality's features
      ``(B, dim)`` are zeros.
    - In ``train()`` mode :func:`drop_modalities` zeroes one modality for a share ``p_drop``
      of the complete pairs; in ``eval()`` mode nothing is dropped.

    ``p_drop=0`` is plain late fusion.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        dim: int = 32,
        width: int = 8,
        hidden: int = 64,
        p_drop: float = 0.0,
    ):
        super().__init__(
            "late", vocab_size, num_classes=num_classes, dim=dim, width=width, hidden=hidden
        )
        self.p_drop = check_float("p_drop", p_drop, low=0.0, high=1.0)

    def fused_features(
        self,
        images: torch.Tensor | None,
        tokens: torch.Tensor | None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[text, image]`` features ``(B, 2 * dim)``; a missing or dropped one is zeros."""
        require(images is not None or tokens is not None, "images or tokens", "given", "neither")
        if images is not None:  # each encoder checks its own input
            image = self.image_encoder(images)  # (B, dim)
        if tokens is not None:
            text = self.text_encoder(tokens, lengths)  # (B, dim)
        if images is None:
            image = torch.zeros_like(text)
        elif tokens is None:
            text = torch.zeros_like(image)
        else:
            check_same_batch(images=images, tokens=tokens)
            if self.training and self.p_drop > 0:  # only a complete pair has one to lose
                image, text = drop_modalities(image, text, self.p_drop)
        return torch.cat([text, image], dim=1)  # (B, 2 * dim)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, p_drop={self.p_drop}"

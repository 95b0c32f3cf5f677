"""Tiny videos: one shapes-world object sliding across a few frames, captioned by its motion.

A clip (:mod:`mmlib.data.clips`) is ``frames`` images of 32x32 in which one object
moves ``step`` pixels per frame to the left, right, up or down: "the small red circle moves left".
Positions are drawn so that any *single* frame looks the same whatever the direction: the
object's place in one frame says nothing about where it goes next, only the order of the frames
does. :class:`VideoClassifier` reads a clip with one image encoder shared by all frames.
"""

from __future__ import annotations

import torch
from torch import nn

from mmlib.data.clips import DIRECTIONS
from mmlib.encoders import ImageEncoder
from mmlib.validate import check_choice, check_int, check_tensor, require

__all__ = ["VideoClassifier"]


class VideoClassifier(nn.Module):
    """Clips ``(B, F, 3, 32, 32)`` -> logits ``(B, num_classes)``.

    Every frame goes through one shared :class:`mmlib.encoders.ImageEncoder` to ``(B, F, dim)``;
    then ``temporal`` turns the frame features into one vector per clip:

    - ``"mean"``: their average. It ignores the order of the frames, so it cannot tell a clip
      from the same clip played backwards. With ``F = 1`` it is a single-frame classifier.
    - ``"gru"``: a GRU reads them in order; its last hidden state is the clip's feature.
    - ``"difference"``: the encoder sees the ``F - 1`` differences of consecutive frames
      (where the object went minus where it was), and their features are averaged.

    A linear layer maps the clip's feature to the logits.
    """

    def __init__(
        self, num_classes: int = len(DIRECTIONS), dim: int = 64, width: int = 8, temporal="gru"
    ):
        super().__init__()
        check_int("num_classes", num_classes, minimum=2)  # the encoder checks dim and width
        self.temporal = check_choice("temporal", temporal, ("mean", "gru", "difference"))
        self.frame_encoder = ImageEncoder(dim=dim, width=width)
        self.rnn = nn.GRU(dim, dim, batch_first=True) if temporal == "gru" else None
        self.head = nn.Linear(dim, num_classes)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        size = self.frame_encoder.image_size
        check_tensor("videos", videos, shape=(None, None, 3, size, size), dtype="float")
        batch, frames = videos.shape[:2]
        if self.temporal == "difference":
            require(frames >= 2, "videos", "2 frames or more for temporal='difference'", videos)
            videos = videos[:, 1:] - videos[:, :-1]  # (B, F - 1, 3, H, W)
            frames -= 1
        features = self.frame_encoder(videos.flatten(0, 1)).view(batch, frames, -1)  # (B, F, dim)
        if self.rnn is not None:
            _, last = self.rnn(features)  # (1, B, dim)
            clip = last[-1]
        else:
            clip = features.mean(dim=1)
        return self.head(clip)  # (B, num_classes)

"""Small unimodal encoders that the chapters share: a CNN for images, a GRU for text.

Both map a batch to one feature vector per example, ``(B, dim)``; both can also return the
per-position features (image patches, token states) that cross-attention needs.
"""

from __future__ import annotations

import torch
from torch import nn

from mmlib.validate import (
    CheckedEmbedding,
    check_images,
    check_int,
    check_ints,
    check_tensor,
    require,
)

__all__ = ["ImageEncoder", "TextEncoder"]


class ImageEncoder(nn.Module):
    """Images ``(B, 3, 32, 32)`` -> features ``(B, dim)``.

    Three blocks of 3x3 convolution, ReLU and 2x2 max-pooling shrink 32x32 to a 4x4 grid of
    ``4 * width`` channels (16 "patches"); a linear layer maps the flattened grid to ``dim``.
    Each block pools before its ReLU: the maximum of four ReLUs is the ReLU of their maximum,
    so the values and gradients are exactly those of ReLU-then-pool, with a quarter of the
    ReLUs.
    """

    def __init__(self, dim: int = 64, width: int = 16, image_size: int = 32):
        super().__init__()
        check_ints(minimum=1, dim=dim, width=width)
        self.image_size = check_int("image_size", image_size, minimum=8)
        require(image_size % 8 == 0, "image_size", "a multiple of 8", image_size)
        channels = [3, width, 2 * width, 4 * width]
        layers = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.patch_dim = 4 * width
        self.num_patches = (image_size // 8) ** 2
        self.proj = nn.Linear(self.patch_dim * self.num_patches, dim)

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        """The three conv blocks on ``x (B, C, H, W)`` -> ``(B, 4w, H/8, W/8)``.

        They run in channels-last memory (each pixel's channels side by side), which makes the
        CPU's convolution and pooling kernels about a third faster here; the values are the
        same up to rounding."""
        return self.features(x.contiguous(memory_format=torch.channels_last))

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` -> patch features ``(B, num_patches, patch_dim)``."""
        check_images("images", images, size=self.image_size)
        return self.grid(images).flatten(2).transpose(1, 2)  # (B, P, 4w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.patches(images).flatten(1))  # (B, dim)


class TextEncoder(nn.Module):
    """Token ids ``(B, T)`` (0 = padding) -> features ``(B, dim)``.

    Embedding, a batch-first GRU, the hidden state after each caption's last real token
    (from ``lengths``, or all ``T`` tokens), then a linear layer to ``dim``.
    """

    def __init__(self, vocab_size: int, dim: int = 64, embed_dim: int = 32, hidden_dim: int = 64):
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        check_ints(minimum=1, dim=dim, embed_dim=embed_dim, hidden_dim=hidden_dim)
        # an out-of-range id fails in the lookup with a ValueError naming tokens: no scan per step
        self.embedding = CheckedEmbedding(vocab_size, embed_dim, padding_idx=0, argument="tokens")
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.proj = nn.Linear(hidden_dim, dim)

    def states(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, T)`` -> GRU states at every position ``(B, T, hidden_dim)``."""
        check_tensor("tokens", tokens, ndim=2, dtype="integer")
        states, _ = self.rnn(self.embedding(tokens))
        return states

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        states = self.states(tokens)  # (B, T, H)
        if lengths is None:
            last = states[:, -1]
        else:
            check_tensor("lengths", lengths, shape=(len(tokens),), dtype="integer")
            index = (lengths.to(states.device) - 1).view(-1, 1, 1).expand(-1, 1, states.shape[2])
            try:  # the gather checks the range of lengths, without a scan per step
                last = states.gather(1, index).squeeze(1)  # (B, H): the state at length - 1
            except RuntimeError:
                msg = f"lengths must be in [1, {states.shape[1]}], got {lengths.tolist()}"
                raise ValueError(msg) from None
        return self.proj(last)  # (B, dim)

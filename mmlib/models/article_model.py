"""The article's multimodal model (section 5.2), fixed so that it runs and learns.

Same modules and sizes as the article's listing (:mod:`mmlib.models.article_listing`):

- :class:`TextModule`: Embedding 10,000x256, then a GRU 256->512. Fixed: the GRU is
  ``batch_first`` and the module returns the last hidden state ``(B, 512)`` (taken at each
  sequence's true length), not every time step ``(B, T, 512)``.
- :class:`ImageModule`: Conv2d 3->64 (3x3, padding 1), then Linear 64*32*32->512.
  Added: a ReLU between them; without it the module is one linear map.
- :class:`FusionModule`: concatenate the two 512-vectors, Linear 1024->512.
- :class:`MultiModalModel`: the three together, with an optional classification head.
"""

from __future__ import annotations

import torch
from torch import nn

from mmlib.validate import (
    CheckedEmbedding,
    check_images,
    check_int,
    check_ints,
    check_same_batch,
    check_tensor,
    require,
)

__all__ = ["FusionModule", "ImageModule", "MultiModalModel", "TextModule"]


def _check_text(tokens: object, lengths: object) -> None:
    """Check :class:`TextModule`'s input: ids ``(B, T)`` (only their dtype: the embedding
    reports ids out of range) and ``lengths (B,)`` in ``[1, T]`` (B numbers, which the
    packing copies to the CPU anyway)."""
    check_tensor("tokens", tokens, ndim=2, dtype="integer")
    if lengths is not None:
        check_tensor("lengths", lengths, ndim=1, dtype="integer")
        check_same_batch(tokens=tokens, lengths=lengths)
        low, high, T = int(lengths.min()), int(lengths.max()), tokens.shape[1]  # B numbers
        require(1 <= low and high <= T, "lengths", f"in [1, T = {T}]", f"{low} to {high}")


class TextModule(nn.Module):
    """Token ids ``(B, T)`` -> text features ``(B, hidden_dim)``.

    Embedding, then a batch-first GRU; the feature is the GRU's hidden state after the last
    real token of each sequence (``lengths``; all ``T`` tokens when ``lengths`` is None).
    """

    def __init__(self, vocab_size: int = 10_000, embed_dim: int = 256, hidden_dim: int = 512):
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        check_ints(minimum=1, embed_dim=embed_dim, hidden_dim=hidden_dim)
        self.embedding = CheckedEmbedding(vocab_size, embed_dim, argument="tokens", padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        _check_text(tokens, lengths)
        x = self.embedding(tokens)  # (B, T, E)
        if lengths is None:
            _, h_n = self.rnn(x)  # h_n: (layers, B, H) whatever batch_first says
            return h_n[-1]  # (B, H)
        packed = nn.utils.rnn.pack_padded_sequence(
            x,
            lengths.cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        _, h_n = self.rnn(packed)
        return h_n[-1]  # (B, H), in the original batch order


class ImageModule(nn.Module):
    """Images ``(B, 3, 32, 32)`` -> image features ``(B, out_dim)``: conv, ReLU, flatten, linear."""

    def __init__(
        self, in_channels: int = 3, channels: int = 64, image_size: int = 32, out_dim: int = 512
    ):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.image_size = check_int("image_size", image_size, minimum=1)
        check_ints(minimum=1, channels=channels, out_dim=out_dim)
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=3, stride=1, padding=1)
        self.fc = nn.Linear(channels * image_size * image_size, out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images("images", images, channels=self.in_channels, size=self.image_size)
        x = torch.relu(self.conv(images))  # (B, C, H, W)
        return self.fc(x.flatten(1))  # (B, out_dim)


def _check_features(text: object, text_dim: int, image: object, image_dim: int) -> None:
    """Check the two feature batches that :class:`FusionModule` joins."""
    check_tensor("text", text, dtype="float", shape=(None, text_dim))
    check_tensor("image", image, dtype="float", shape=(None, image_dim))
    check_same_batch(text=text, image=image)


class FusionModule(nn.Module):
    """Late fusion: ``cat([text (B, Dt), image (B, Di)], dim=1)`` -> Linear -> ``(B, out_dim)``."""

    def __init__(self, text_dim: int = 512, image_dim: int = 512, out_dim: int = 512):
        super().__init__()
        check_ints(minimum=1, text_dim=text_dim, image_dim=image_dim, out_dim=out_dim)
        self.text_dim, self.image_dim = text_dim, image_dim
        self.fc = nn.Linear(text_dim + image_dim, out_dim)

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        _check_features(text, self.text_dim, image, self.image_dim)
        return self.fc(torch.cat([text, image], dim=1))  # (B, out_dim)


class MultiModalModel(nn.Module):
    """Text ``(B, T)`` + image ``(B, 3, 32, 32)`` -> ``(B, 512)`` or logits ``(B, num_classes)``.

    With ``num_classes`` set, a ReLU and a Linear head turn the unified representation into
    class logits, so the model can be trained on a task (chapter 5, section 5.4).
    """

    def __init__(
        self,
        vocab_size: int = 10_000,
        num_classes: int | None = None,
        embed_dim: int = 256,
        hidden_dim: int = 512,
        channels: int = 64,
    ):
        super().__init__()
        self.text_module = TextModule(vocab_size, embed_dim, hidden_dim)
        self.image_module = ImageModule(3, channels, 32, hidden_dim)
        self.fusion_module = FusionModule(hidden_dim, hidden_dim, hidden_dim)
        self.head = None
        if num_classes is not None:
            check_int("num_classes", num_classes, minimum=1)
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden_dim, num_classes))

    def features(
        self, text: torch.Tensor, image: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The unified representation ``(B, 512)``: what the head, if there is one, reads."""
        check_tensor("text", text, ndim=2)  # the modules name them tokens and images
        check_tensor("image", image, ndim=4)  # (and the fusion checks the batch sizes)
        return self.fusion_module(self.text_module(text, lengths), self.image_module(image))

    def forward(
        self, text: torch.Tensor, image: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        fused = self.features(text, image, lengths)
        return fused if self.head is None else self.head(fused)

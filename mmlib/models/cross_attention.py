"""Cross-attention fusion: every text token looks at every image patch and takes what it needs.

Late fusion (:class:`~mmlib.models.fusion.FusionClassifier`) squeezes the image into one vector
before the text ever sees it. Cross-attention keeps the image as a grid of patches and lets each
token of the question ask its own query of that grid: the token "circle" can pull in the features
(and the position) of the patch that holds the circle, the token "square" those of the square. This
is the fusion step of Flamingo-style models, in one small block:

    words (B, T, D) --queries--> MultiheadAttention <--keys, values-- patches (B, 16, D)
    then a residual MLP per word, a GRU over the enriched words, and a classification head.
"""

from __future__ import annotations

import torch
from torch import nn

from mmlib.encoders import ImageEncoder, TextEncoder
from mmlib.validate import check_images, check_ints, check_same_batch, check_tensor, require

__all__ = ["CrossAttentionClassifier", "token_mask"]


def token_mask(lengths: torch.Tensor | None, num_tokens: int, batch: int) -> torch.Tensor:
    """``(B, T) bool``, True at the real tokens: position ``t < lengths[b]`` (all True if None).

    ``lengths``: ``(B,) integer`` in ``[1, num_tokens]``, or None.
    """
    check_ints(minimum=1, num_tokens=num_tokens, batch=batch)
    if lengths is None:
        return torch.ones(batch, num_tokens, dtype=torch.bool)
    check_tensor("lengths", lengths, shape=(batch,), dtype="integer")
    low, high = int(lengths.min()), int(lengths.max())  # B numbers; a bad one would go unnoticed
    require(low >= 1 and high <= num_tokens, "lengths", f"in [1, {num_tokens}]", f"{low}..{high}")
    return torch.arange(num_tokens, device=lengths.device).view(1, -1) < lengths.view(-1, 1)


class CrossAttentionClassifier(nn.Module):
    """Text tokens attend to image patches; ``forward(images, tokens, lengths) -> (B, C)``.

    - ``images (B, 3, 32, 32) float``: the CNN of :class:`mmlib.encoders.ImageEncoder` turns
      them into a 4x4 grid, 16 patches of ``4 * width`` channels, each projected to ``dim``
      and given a learned position embedding: ``(B, 16, dim)``.
    - ``tokens (B, T)`` (0 = padding) and ``lengths (B,)`` or None: each word's embedding
      ``(B, T, dim)`` asks its own query of the patches, ``x = e + Attention(LN(e), LN(p),
      LN(p))`` with ``heads`` heads (``nn.MultiheadAttention``), then ``x = x + MLP(x)``.
    - The GRU of :class:`mmlib.encoders.TextEncoder` reads the enriched words in order; its
      state after the last real token goes through a two-layer head to ``num_classes`` logits.

    :meth:`attention_weights` returns the attention map ``(B, T, 16)`` for plotting.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        dim: int = 32,
        width: int = 8,
        heads: int = 2,
        hidden: int = 64,
    ):
        super().__init__()
        check_ints(minimum=2, vocab_size=vocab_size, num_classes=num_classes)
        check_ints(minimum=1, dim=dim, width=width, heads=heads, hidden=hidden)
        require(dim % heads == 0, "dim", f"a multiple of heads ({heads})", dim)
        self.num_classes = num_classes
        self.text_encoder = TextEncoder(vocab_size, dim=dim, embed_dim=dim, hidden_dim=dim)
        self.image_encoder = ImageEncoder(dim=dim, width=width)
        # per patch (4w -> dim) instead of the whole flattened grid: the 16 patches stay apart
        self.image_encoder.proj = nn.Linear(self.image_encoder.patch_dim, dim)
        self.position = nn.Parameter(0.02 * torch.randn(1, self.image_encoder.num_patches, dim))
        self.norm_text, self.norm_image = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.token_mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
        )
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def _inputs(self, images, tokens, lengths):
        """Checked inputs -> patches ``(B, 16, dim)``, word embeddings ``(B, T, dim)``, last."""
        check_tensor("tokens", tokens, ndim=2, dtype="integer")  # ids: the embedding checks them
        batch = check_same_batch(images=check_images("images", images), tokens=tokens)
        mask = token_mask(lengths, tokens.shape[1], batch).to(tokens.device)  # (B, T)
        patches = self.image_encoder.proj(self.image_encoder.patches(images)) + self.position
        return patches, self.text_encoder.embedding(tokens), mask.sum(1) - 1

    def _attend(self, patches, words, need_weights=False):
        keys = self.norm_image(patches)  # (B, 16, dim)
        seen, weights = self.attention(
            self.norm_text(words), keys, keys, need_weights=need_weights
        )  # (B, T, dim), (B, T, 16) averaged over heads
        return words + seen, weights

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        patches, words, last = self._inputs(images, tokens, lengths)
        x, _ = self._attend(patches, words)  # (B, T, dim): each word plus what it saw
        states, _ = self.text_encoder.rnn(x + self.token_mlp(x))  # (B, T, dim), read in order
        final = states[torch.arange(len(states), device=states.device), last]  # (B, dim)
        return self.head(self.text_encoder.proj(final))  # (B, num_classes)

    @torch.no_grad()
    def attention_weights(
        self, images: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """How much each word attends to each patch, averaged over heads: ``(B, T, 16)``.

        Rows sum to 1; patch ``k`` is row ``k // 4``, column ``k % 4`` of the 4x4 grid.
        """
        patches, words, _ = self._inputs(images, tokens, lengths)
        return self._attend(patches, words, need_weights=True)[1]

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"

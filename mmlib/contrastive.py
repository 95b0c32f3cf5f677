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
from mmlib.seed import seed_everything
from mmlib.tokenizer import Tokenizer
from mmlib.train import History, TensorBatches, train
from mmlib.validate import (
    check_float,
    check_images,
    check_int,
    check_same_batch,
    check_tensor,
    describe,
)

__all__ = ["DualEncoder", "caption_ids", "clip_loss", "pretrain_dual_encoder"]

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
        check_same_batch(images=images, tokens=tokens)
        image_emb, text_emb = self.encode_images(images), self.encode_texts(tokens, lengths)
        return self.scale() * image_emb @ text_emb.T  # (B_images, B_texts)


def caption_ids(captions: Sequence[str]) -> torch.Tensor:
    """Integer id per caption, equal ids for identical captions: ``(B,)`` int64."""
    if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
        raise TypeError(f"captions must be a sequence of str, got {type(captions).__name__}")
    index: dict[str, int] = {}
    return torch.tensor([index.setdefault(c, len(index)) for c in captions], dtype=torch.long)


def clip_loss(logits: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over image-to-text ``logits (B, B)``.

    Without ``ids`` the targets are the diagonal, as in CLIP. With ``ids (B,)`` (from
    :func:`caption_ids`), examples that share a caption are *all* correct partners: the target
    of each row is spread evenly over them, so a duplicate caption is never a false negative.
    """
    check_tensor("logits", logits, ndim=2, dtype="float")
    if logits.shape[0] != logits.shape[1]:
        raise ValueError(f"logits must be square (B, B), got shape {tuple(logits.shape)}")
    if ids is None:
        targets = torch.eye(len(logits), device=logits.device)
    else:
        check_tensor("ids", ids, shape=(len(logits),), dtype="integer")
        same = (ids.view(-1, 1) == ids.view(1, -1)).to(logits.device, logits.dtype)
        targets = same / same.sum(dim=1, keepdim=True)
    image_to_text = F.cross_entropy(logits, targets)
    text_to_image = F.cross_entropy(logits.T, targets.T)
    return (image_to_text + text_to_image) / 2


def pretrain_dual_encoder(
    images: torch.Tensor,
    captions: Sequence[str],
    tokenizer: Tokenizer,
    *,
    dim: int = 64,
    width: int = 16,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-2,
    grad_clip: float | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    eval_fn=None,
    eval_every: int | None = None,
    progress: bool = True,
) -> tuple[DualEncoder, History]:
    """Contrastive pretraining on image-caption pairs: returns ``(model, history)``.

    ``images (N, 3, 32, 32) float`` and their N ``captions``; ``tokenizer`` (an
    :class:`mmlib.tokenizer.Tokenizer`) turns the captions into padded ids and lengths. A fresh
    :class:`DualEncoder` (``dim``, ``width``, initialised from ``seed``) is trained with
    :func:`mmlib.train.train` on shuffled batches of ``batch_size`` pairs for ``steps`` steps
    (AdamW, cosine decay from ``lr``, gradient norm clipped to ``grad_clip`` if given),
    minimising :func:`clip_loss` with the soft targets of :func:`caption_ids`, so identical
    captions in a batch are never false negatives. The
    temperature ``1 / scale`` is logged at every step (``history.logs``). ``eval_fn`` and
    ``eval_every`` are passed to ``train``. The model comes back in eval mode on ``device``.
    """
    check_images("images", images, finite=True)
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise TypeError(f"captions must be a list of str, got {describe(captions)}")
    if len(captions) != len(images):
        raise ValueError(
            f"captions must hold one caption per image ({len(images)}), got {len(captions)}"
        )
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a mmlib.tokenizer.Tokenizer, got {describe(tokenizer)}")
    check_int("batch_size", batch_size, minimum=2)
    if batch_size > len(images):
        raise ValueError(
            f"batch_size must be <= the number of pairs ({len(images)}), got {batch_size}"
        )
    ids = caption_ids(captions)  # (N,): equal for equal captions, so also within any batch
    tokens, lengths = tokenizer.encode_batch(captions)  # (N, T), (N,)
    if int(lengths.min()) < 1:
        raise ValueError("captions must each hold at least one word, got an empty caption")
    seed_everything(check_int("seed", seed, minimum=0))
    model = DualEncoder(tokenizer.vocab_size, dim=dim, width=width)
    batches = TensorBatches(
        images, tokens, lengths, ids, batch_size=batch_size, seed=seed, drop_last=True
    )

    def loss_fn(net, batch):  # net may be a DistributedDataParallel wrapper of model
        image, token, length, caption = batch
        loss = clip_loss(net(image, token, length), caption)
        return loss, {"temperature": 1.0 / float(model.scale().detach())}

    history = train(
        model,
        loss_fn,
        batches,
        steps=steps,
        lr=lr,
        grad_clip=grad_clip,
        device=device,
        seed=seed,
        eval_fn=eval_fn,
        eval_every=eval_every,
        progress=progress,
        desc="pretrain",
    )
    return model.eval(), history

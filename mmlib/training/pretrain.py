"""Contrastive pretraining of a dual encoder on image-caption pairs: CLIP's recipe in small.

:func:`pretrain_dual_encoder` builds a :class:`mmlib.models.contrastive.DualEncoder`, tokenises
the captions and trains it with :func:`mmlib.models.contrastive.clip_loss` through
:func:`mmlib.training.loop.train`. Chapters 3, 6.2 and 6.3 start from what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmlib.data.tokenizer import Tokenizer
from mmlib.models.contrastive import DualEncoder, caption_ids, clip_loss
from mmlib.seed import seed_everything
from mmlib.training.batches import TensorBatches
from mmlib.training.history import History
from mmlib.training.loop import train
from mmlib.validate import check_images, check_int, check_strings, check_type, require

__all__ = ["pretrain_dual_encoder"]


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
    :class:`mmlib.data.tokenizer.Tokenizer`) turns the captions into padded ids and lengths. A fresh
    :class:`~mmlib.models.contrastive.DualEncoder` (``dim``, ``width``, initialised from ``seed``)
    is trained with :func:`~mmlib.training.loop.train` on shuffled batches of ``batch_size`` pairs
    for ``steps`` steps (AdamW, cosine decay from ``lr``, gradient norm clipped to ``grad_clip`` if
    given), minimising :func:`~mmlib.models.contrastive.clip_loss` with the soft targets of
    :func:`~mmlib.models.contrastive.caption_ids`, so identical captions in a batch are never false
    negatives. The temperature ``1 / scale`` is logged at every step (``history.logs``). ``eval_fn``
    and ``eval_every`` are passed to ``train``. The model comes back in eval mode on ``device``.
    """
    check_images("images", images, finite=True)  # once per run: the data set, not a batch
    check_strings("captions", captions)
    n = len(images)
    require(len(captions) == n, "captions", f"{n} captions, one per image", len(captions))
    check_type("tokenizer", tokenizer, Tokenizer, "mmlib.data.tokenizer.Tokenizer")
    check_int("batch_size", batch_size, minimum=2)  # TensorBatches: <= N
    ids = caption_ids(captions)  # (N,): equal for equal captions, so also within any batch
    tokens, lengths = tokenizer.encode_batch(captions)  # (N, T), (N,)
    require(int(lengths.min()) >= 1, "captions", "of one word or more", "an empty caption")
    batches = TensorBatches(
        images, tokens, lengths, ids, batch_size=batch_size, seed=seed, drop_last=True
    )
    seed_everything(seed)
    model = DualEncoder(tokenizer.vocab_size, dim=dim, width=width)

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

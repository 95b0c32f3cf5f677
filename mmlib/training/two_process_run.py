"""Chapter 7's data-parallel run, started by ``torchrun`` as two processes:

    torchrun --nproc_per_node=2 -m mmlib.training.two_process_run OUT.pt

Each process builds the same caption-matching data and the same late-fusion model as chapter 1
(:func:`fusion_problem`) and calls :func:`~mmlib.training.loop.train`, which notices torchrun's
environment, wraps the model in ``DistributedDataParallel`` and gives each process half of every
global batch; the gradients are averaged across the two during ``backward``. Rank 0 then saves a
checkpoint to ``OUT.pt`` (:func:`~mmlib.training.checkpoint.save_checkpoint`).
:func:`fusion_run` trains the same model in one process, so the two can be compared.
"""

from __future__ import annotations

import sys

import torch

from mmlib.data.scenes import make_scenes
from mmlib.data.tasks import caption_match
from mmlib.data.tokenizer import Tokenizer
from mmlib.models.fusion import FusionClassifier, classification_loss
from mmlib.training.batches import TensorBatches
from mmlib.training.checkpoint import save_checkpoint
from mmlib.training.ddp import is_main_process
from mmlib.training.history import History
from mmlib.training.loop import train

__all__ = ["STEPS", "fusion_model", "fusion_problem", "fusion_run"]

#: Optimizer steps of the run, in one process or several.
STEPS = 60
BATCH, LR = 64, 3e-3  # the global batch: 32 rows per process when there are two


def fusion_problem(n: int = 2000) -> tuple[FusionClassifier, TensorBatches, tuple]:
    """Chapter 1's task at a smaller size: a late-fusion model, its training batches of true
    and false captions, and a test set ``(images, tokens, lengths, labels)``."""
    scenes = make_scenes(n, seed=0, num_objects=1)
    images, captions, labels = caption_match(scenes, seed=0)
    tokenizer = Tokenizer.from_texts(scenes.captions)
    tokens, lengths = tokenizer.encode_batch(captions)
    rows = n * 3 // 4
    batches = TensorBatches(
        images[:rows],
        tokens[:rows],
        lengths[:rows],
        labels[:rows],
        batch_size=BATCH,
        seed=0,
        drop_last=True,
    )
    test = (images[rows:], tokens[rows:], lengths[rows:], labels[rows:])
    return fusion_model(tokenizer.vocab_size), batches, test


def fusion_model(vocab_size: int) -> FusionClassifier:
    """The late-fusion model of the run, with the same initial weights every time."""
    torch.manual_seed(0)
    return FusionClassifier("late", vocab_size, num_classes=2, dim=32, width=8)


def fusion_run(model: FusionClassifier, batches: TensorBatches) -> History:
    """Train ``model`` on the CPU with the book's loop: one process, or one of several."""
    return train(
        model, classification_loss, batches, steps=STEPS, lr=LR, device="cpu", progress=False
    )


if __name__ == "__main__":
    model, batches, _ = fusion_problem()
    history = fusion_run(model, batches)
    if is_main_process():
        save_checkpoint(sys.argv[1], model, steps=STEPS, final_loss=history.loss[-1])

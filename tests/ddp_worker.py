"""Started twice by tests/test_ddp.py under torchrun: trains one small MLP data-parallel.

It trains in float64 (to check the maths) and then in float32 (what the book uses); each
process saves its final weights, its loss history and the first batch slice it saw to
``<out_dir>/rank<R>_<dtype>.pt``. :func:`make_problem` is shared with the test, which trains the
same model on the same global batches in a single process and compares.
"""

import os
import sys

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmlib.training.batches import TensorBatches
from mmlib.training.loop import train

STEPS, LR, GLOBAL_BATCH = 20, 1e-2, 32


DTYPES = {"float64": torch.float64, "float32": torch.float32}


def make_problem(dtype="float32"):
    """A seeded MLP ``(B, 8) -> (B, 1)`` and a smooth regression target, in global batches."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=gen, dtype=DTYPES[dtype])
    y = torch.sin(x.sum(dim=1, keepdim=True) / 3)  # about one period over the data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1)).to(DTYPES[dtype])
    return model, TensorBatches(x, y, batch_size=GLOBAL_BATCH, seed=0, drop_last=True)


def loss_fn(model, batch):
    x, y = batch
    return F.mse_loss(model(x), y)


def main(out_dir: str) -> None:
    for dtype in DTYPES:  # train() joins and leaves the process group each time
        run(out_dir, dtype)


def run(out_dir: str, dtype: str) -> None:
    rank = int(os.environ["RANK"])
    model, batches = make_problem(dtype)
    seen = []

    def recording_loss(net, batch):
        if not isinstance(net, DistributedDataParallel):
            raise AssertionError(f"rank {rank}: loss_fn got {type(net).__name__}, not DDP")
        if not seen:
            seen.append(batch[0].clone())
        return loss_fn(net, batch)

    history = train(
        model, recording_loss, batches, steps=STEPS, lr=LR, device="cpu", desc="ddp-run"
    )
    torch.save(
        {"state": model.state_dict(), "loss": history.loss, "first_shard": seen[0]},
        os.path.join(out_dir, f"rank{rank}_{dtype}.pt"),
    )


if __name__ == "__main__":
    main(sys.argv[1])

"""One training loop for every chapter: ``history = train(model, loss_fn, batches, steps=200)``.

The loop is plain PyTorch, and :func:`train` shows all of it on one screen: seed, move the
model to the device, then per batch ``loss = loss_fn(model, batch)``, ``zero_grad``,
``backward``, optional gradient clipping, the optimizer's ``step`` (AdamW by default,
:mod:`mmlib.training.optim`) and a cosine decay of the learning rate. Its options live in a
small, validated :class:`TrainConfig`; batching is in :mod:`mmlib.training.batches`, the record
of the run in :mod:`mmlib.training.history`, data-parallel training under ``torchrun`` in
:mod:`mmlib.training.ddp`.

After each run, every function in :data:`RUN_HOOKS` is called with a :class:`Run`: ``make
bench`` installs one (``tools/train_log.py``) that logs steps, samples, seconds and FLOPs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from itertools import islice
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmlib.device import get_device
from mmlib.seed import seed_everything
from mmlib.training import ddp as distributed
from mmlib.training.batches import TensorBatches, _as_device, batch_size, shard_batch, to_device
from mmlib.training.config import TrainConfig, check_inputs, split_loss
from mmlib.training.history import History
from mmlib.training.optim import default_optimizer
from mmlib.validate import require

# In JupyterLab the bar is a notebook widget (tqdm.auto; ipywidgets comes with the book extra).
# Without ipywidgets tqdm.auto would warn "IProgress not found" (with a machine path): text bars.
if find_spec("ipywidgets") is None:
    from tqdm.std import tqdm
else:
    from tqdm.auto import tqdm

__all__ = ["RUN_HOOKS", "Run", "TrainConfig", "train"]


@dataclass
class Run:
    """What a finished :func:`train` call hands to each of :data:`RUN_HOOKS`."""

    model: nn.Module
    loss_fn: Callable[[nn.Module, Any], Any]
    first_batch: Any  # on the device
    history: History
    config: TrainConfig
    device: torch.device
    world_size: int


#: Called as ``hook(run)`` after every run on rank 0; ``make bench`` appends one.
RUN_HOOKS: list[Callable[[Run], None]] = []


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Any],
    batches: Iterable[Any],
    config: TrainConfig | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    **settings: Any,
) -> History:
    """Train ``model`` in place for ``steps`` optimizer steps or ``epochs`` passes; return History.

    - ``loss_fn(model, batch)`` returns a scalar loss, or ``(loss, {name: float})`` whose floats
      go to ``History.logs``; ``batch`` is what ``batches`` yields (a list, a ``DataLoader``,
      :class:`~mmlib.training.batches.TensorBatches`), moved to the device.
    - ``config``, or the same options as keywords (``steps=200, lr=3e-3``): :class:`TrainConfig`.
    - ``optimizer``: default AdamW on ``model.parameters()``; pass your own to keep its state
      across calls (then ``lr`` and ``weight_decay`` are not used).
    - ``eval_fn(model) -> {name: float}`` runs every ``eval_every`` steps and after the last,
      in eval mode without gradients, and leaves the random number generators untouched.
    """
    config = TrainConfig(**settings) if config is None else config.replace(**settings)
    check_inputs(model, loss_fn, batches, optimizer, eval_fn, config)
    device = get_device() if config.device is None else _as_device("device", config.device)
    seed_everything(config.seed)  # the same seed and model give the same weights on the CPU
    run = distributed.start_distributed(device) if distributed.ddp_requested(config.ddp) else None
    rank, world_size = (run.rank, run.world_size) if run else (0, 1)
    device = run.device if run else device
    model.to(device).train()
    net = DistributedDataParallel(model, device_ids=_ids(device)) if run else model
    if optimizer is None:
        optimizer = default_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    schedule = None
    if config.scheduler == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.total(batches))
    bar = tqdm(total=config.total(batches), desc=config.desc, disable=not config.bars(rank))
    history, first_batch, start = History(), None, time.perf_counter()
    try:
        for step, batch in enumerate(_batches(batches, config, rank, world_size), start=1):
            batch = to_device(batch, device)
            first_batch = batch if first_batch is None else first_batch
            loss, logs = split_loss(loss_fn(net, batch), step)
            values = torch.tensor([loss.item(), *logs.values()], dtype=torch.float64)
            if run:  # the mean over processes
                values = distributed.mean_across_processes(values.to(device)).cpu()
            history.record(step, values, logs, optimizer.param_groups[0]["lr"])
            history.samples += batch_size(batch) * world_size

            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # dE/dw for every weight w
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()  # w <- w - lr * (AdamW's step direction)
            if schedule is not None:
                schedule.step()

            bar.set_postfix(loss=f"{history.loss[-1]:.4g}", refresh=False)
            bar.update(1)
            if eval_fn is not None and config.eval_every and step % config.eval_every == 0:
                history.evaluate(step, model, eval_fn, device)
        if eval_fn is not None and (not history.steps or history.steps[-1] != len(history.loss)):
            history.evaluate(len(history.loss), model, eval_fn, device)
    finally:
        bar.close()
    history.seconds = time.perf_counter() - start
    for hook in RUN_HOOKS if rank == 0 else ():
        hook(Run(model, loss_fn, first_batch, history, config, device, world_size))
    return history


def _ids(device: torch.device) -> list[int] | None:
    return [device.index] if device.type == "cuda" else None


def _batches(batches: Iterable[Any], config: TrainConfig, rank: int, world_size: int):
    """``config.steps`` batches (cycling ``batches``) or ``config.epochs`` passes over them;
    under data-parallel training, this process's slice of each."""
    stream = _epochs_of(batches, config.epochs)
    if config.steps is not None:
        stream = islice(stream, config.steps)
    for batch in stream:
        yield shard_batch(batch, rank, world_size) if world_size > 1 else batch


def _epochs_of(batches: Iterable[Any], epochs: int | None) -> Iterator[Any]:
    """Yield batches epoch after epoch (forever when ``epochs`` is None)."""
    epoch = 0
    while epochs is None or epoch < epochs:
        if isinstance(batches, TensorBatches):
            batches.set_epoch(epoch)
        count = 0
        for batch in batches:
            count += 1
            yield batch
        require(count > 0, "batches", "non-empty (yield a batch)", f"none from {batches!r}")
        epoch += 1

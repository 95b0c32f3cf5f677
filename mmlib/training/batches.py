"""Batches for the training loop: moving them to a device, cutting them per process, and
:class:`TensorBatches`, mini-batches of in-memory tensors.

A batch is a tensor, or tuples, lists and dicts of tensors (and other leaves such as strings):
whatever ``loss_fn(model, batch)`` expects. :func:`to_device` and :func:`shard_batch` keep that
structure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from mmlib.device import get_device
from mmlib.validate import (
    check_choice,
    check_int,
    check_same_batch,
    check_tensor,
    check_type,
    require,
)

__all__ = ["TensorBatches", "batch_size", "shard_batch", "to_device"]


def _map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], batch: Any) -> Any:
    """Apply ``fn`` to every tensor inside tuples, lists and dicts; leave other leaves alone."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, Mapping):
        return {key: _map_tensors(fn, value) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(_map_tensors(fn, value) for value in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_map_tensors(fn, value) for value in batch)
    return batch


def _as_device(name: str, device: object) -> torch.device:
    check_type(name, device, (str, torch.device), "torch.device or one of 'cuda', 'mps', 'cpu'")
    if isinstance(device, torch.device):
        return device
    check_choice(name, device, ("cuda", "mps", "cpu"))
    return get_device(device)  # raises ValueError if that device is not available


def to_device(batch: Any, device: str | torch.device) -> Any:
    """Move every tensor in ``batch`` (a tensor, or tuples/lists/dicts of them) to ``device``.

    Non-tensor leaves (strings, numbers) come back unchanged; the structure is kept.
    """
    device = _as_device("device", device)
    return _map_tensors(lambda t: t.to(device), batch)


def shard_batch(batch: Any, rank: int, world_size: int) -> Any:
    """Return process ``rank``'s slice of a global batch: rows ``[rank*b, (rank+1)*b)``.

    Every tensor in ``batch`` is cut along dimension 0 into ``world_size`` equal slices of
    ``b = B // world_size`` rows, so ``B`` must be divisible by ``world_size`` (otherwise
    ``DistributedDataParallel``'s gradient average would weight rows unequally).
    """
    check_int("world_size", world_size, minimum=1)
    check_int("rank", rank, minimum=0)
    require(rank < world_size, "rank", f"< world_size={world_size}", rank)
    rows = f"tensors with a first dimension divisible by world_size={world_size}"

    def cut(t: torch.Tensor) -> torch.Tensor:
        require(t.ndim > 0 and t.shape[0] % world_size == 0, "batch", rows, t)
        size = t.shape[0] // world_size
        return t[rank * size : (rank + 1) * size]

    return _map_tensors(cut, batch)


class TensorBatches:
    """Mini-batches of in-memory tensors, far cheaper than a ``DataLoader`` for small data.

    ``TensorBatches(x, y, batch_size=64)`` yields ``(x[idx], y[idx])`` tuples (a single tensor
    yields tensors). All tensors share their first dimension ``N``. It can be iterated many
    times; epoch ``e`` uses the permutation drawn from ``seed`` and ``e``, so runs repeat
    exactly. ``train`` calls :meth:`set_epoch` so its result does not depend on earlier use.

    Why not ``DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)``, which yields the
    same kind of batches: it fetches each row on its own and stacks the rows of every batch
    again (``collate``), several times slower for data that already sits in one tensor
    (chapter 1 times the two), and its order depends on how often its generator was used
    before, where here it depends only on ``seed`` and the epoch.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        require(len(tensors) > 0, "tensors", "non-empty (one tensor or more)", "none")
        named = {f"tensors[{k}]": t for k, t in enumerate(tensors)}
        for name, t in named.items():
            check_tensor(name, t)
            require(t.ndim > 0, name, "a tensor with a batch dimension", t)
        self.n = check_same_batch(**named)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        check_type("shuffle", shuffle, bool)
        check_type("drop_last", drop_last, bool)
        self.seed = check_int("seed", seed, minimum=0)
        most = f"<= the number of rows ({self.n}) with drop_last=True"
        require(not drop_last or batch_size <= self.n, "batch_size", most, batch_size)
        self.tensors, self.shuffle, self.drop_last = tensors, shuffle, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use epoch ``epoch``'s order."""
        self.epoch = check_int("epoch", epoch, minimum=0)

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[Any]:
        order = None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=generator)
        self.epoch += 1
        for k in range(len(self)):
            start, stop = k * self.batch_size, min((k + 1) * self.batch_size, self.n)
            if order is None:
                batch = tuple(t[start:stop] for t in self.tensors)
            else:
                idx = order[start:stop]
                batch = tuple(t[idx.to(t.device)] for t in self.tensors)
            yield batch[0] if len(batch) == 1 else batch


def batch_size(batch: Any) -> int:
    """The number of examples in ``batch``: the first dimension of its first tensor (0 if none)."""
    sizes: list[int] = []

    def note(t: torch.Tensor) -> torch.Tensor:
        sizes.append(t.shape[0] if t.ndim else 1)
        return t

    _map_tensors(note, batch)
    return sizes[0] if sizes else 0

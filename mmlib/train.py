"""One training loop for every chapter: ``history = train(model, loss_fn, batches, steps=200)``.

The loop is plain PyTorch: move a batch to the device, ``loss = loss_fn(model, batch)``,
``backward``, optional gradient clipping, ``AdamW.step`` (:mod:`mmlib.optim`), cosine
learning-rate decay. Around it sit the things every chapter needs and nobody wants to
rewrite: argument checks, seeding, a tqdm progress bar, evaluation hooks, a :class:`History`
that plots itself, and data-parallel training under ``torchrun`` (see :mod:`mmlib.ddp`).

Benchmarks (``make bench``) set the environment variable ``MMBOOK_TRAIN_LOG`` to a file name;
then every run appends one JSON line to it (steps, samples, seconds, FLOPs per step, device),
counted after the timed run on a copy of the model, so the results do not change.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmlib import ddp as distributed
from mmlib.device import get_device
from mmlib.optim import AdamW
from mmlib.seed import seed_everything
from mmlib.validate import check_float, check_int, check_same_batch, check_tensor, describe

# In JupyterLab the bar is a notebook widget (tqdm.auto; ipywidgets comes with the book extra).
# Without ipywidgets tqdm.auto would warn "IProgress not found" (with a machine path): text bars.
if find_spec("ipywidgets") is None:
    from tqdm.std import tqdm
else:
    from tqdm.auto import tqdm

__all__ = ["History", "TensorBatches", "default_optimizer", "shard_batch", "to_device", "train"]


# ---------------------------------------------------------------------------- batches
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
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        if device not in ("cuda", "mps", "cpu"):
            raise ValueError(
                f"{name} must be 'cuda', 'mps', 'cpu' or a torch.device, got {device!r}"
            )
        return get_device(device)  # raises ValueError if that device is not available
    raise TypeError(
        f"{name} must be a torch.device or one of 'cuda', 'mps', 'cpu', got {describe(device)}"
    )


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
    world_size = check_int("world_size", world_size, minimum=1)
    rank = check_int("rank", rank, minimum=0)
    if rank >= world_size:
        raise ValueError(f"rank must be < world_size={world_size}, got {rank}")

    def cut(t: torch.Tensor) -> torch.Tensor:
        if t.ndim == 0 or t.shape[0] % world_size:
            raise ValueError(
                f"batch tensors must have a first dimension divisible by world_size={world_size} "
                f"to be shared out, got {describe(t)}; choose a batch size divisible by "
                "world_size and drop_last=True"
            )
        size = t.shape[0] // world_size
        return t[rank * size : (rank + 1) * size]

    return _map_tensors(cut, batch)


class TensorBatches:
    """Mini-batches of in-memory tensors, far cheaper than a ``DataLoader`` for small data.

    ``TensorBatches(x, y, batch_size=64)`` yields ``(x[idx], y[idx])`` tuples (a single tensor
    yields tensors). All tensors share their first dimension ``N``. It can be iterated many
    times; epoch ``e`` uses the permutation drawn from ``seed`` and ``e``, so runs repeat
    exactly. ``train`` calls :meth:`set_epoch` so its result does not depend on earlier use.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not tensors:
            raise ValueError("tensors must hold at least one tensor, got none")
        for k, t in enumerate(tensors):
            check_tensor(f"tensors[{k}]", t)
            if t.ndim == 0:
                raise ValueError(f"tensors[{k}] must have a batch dimension, got {describe(t)}")
        self.n = check_same_batch(**{f"tensors[{k}]": t for k, t in enumerate(tensors)})
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {describe(flag)}")
        self.seed = check_int("seed", seed, minimum=0)
        if drop_last and batch_size > self.n:
            raise ValueError(
                f"batch_size must be <= the number of rows ({self.n}) when drop_last=True, "
                f"got {batch_size}"
            )
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


# ---------------------------------------------------------------------------- history
@dataclass(repr=False)
class History:
    """What a training run recorded.

    ``loss[i]`` and ``lr[i]`` belong to optimizer step ``i + 1``; ``logs[i]`` holds the extra
    floats ``loss_fn`` returned at that step. ``metrics[j]`` is what ``eval_fn`` returned after
    step ``steps[j]``. ``seconds`` is the wall time of the whole run. Under data-parallel
    training the losses and logs are averaged over processes.
    """

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    logs: list[dict[str, float]] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def names(self) -> list[str]:
        """Every name :meth:`final` accepts: ``"loss"``, logged names, metric names."""
        names = ["loss"] if self.loss else []
        for record in self.logs + self.metrics:
            names += [name for name in record if name not in names]
        return names

    def final(self, name: str) -> float:
        """The last recorded value of ``name`` (``"loss"``, an ``eval_fn`` metric, a log)."""
        if name not in self.names():
            raise ValueError(f"name must be one of {self.names()}, got {name!r}")
        if name == "loss":
            return self.loss[-1]
        for record in reversed(self.metrics):
            if name in record:
                return record[name]
        return next(record[name] for record in reversed(self.logs) if name in record)

    def plot(self, ax: Any = None) -> Any:
        """Draw the loss per step, and ``eval_fn`` metrics on a twin axis; return the axis."""
        import matplotlib.pyplot as plt

        if not self.loss:
            raise ValueError("history must hold at least one step to plot, got an empty one")
        ax = plt.gca() if ax is None else ax
        lines = ax.plot(range(1, len(self.loss) + 1), self.loss, color="C0", label="train loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        names = [n for n in self.names() if any(n in m for m in self.metrics)]
        if names:
            twin = ax.twinx()
            for k, name in enumerate(names):
                points = [
                    (s, m[name]) for s, m in zip(self.steps, self.metrics, strict=True) if name in m
                ]
                xs, ys = zip(*points, strict=True)
                lines += twin.plot(xs, ys, "o-", color=f"C{k + 1}", label=name)
            twin.set_ylabel("metric")
        ax.legend(lines, [line.get_label() for line in lines], loc="best")
        return ax

    def __repr__(self) -> str:
        final = f", final loss={self.loss[-1]:.4g}" if self.loss else ""
        return f"History(steps={len(self.loss)}{final}, evaluations={len(self.steps)})"


# ---------------------------------------------------------------------------- the loop
def _length(batches: object) -> int | None:
    """``len(batches)``, or None for iterables without a length (some DataLoaders raise)."""
    try:
        return len(batches)
    except TypeError:
        return None


def _check_positive(name: str, value: object) -> None:
    check_float(name, value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value}")


def _check_arguments(
    model,
    loss_fn,
    batches,
    steps,
    epochs,
    lr,
    optimizer,
    weight_decay,
    scheduler,
    grad_clip,
    eval_fn,
    eval_every,
    progress,
    desc,
) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be callable as loss_fn(model, batch), got {describe(loss_fn)}"
        )
    if not isinstance(batches, Iterable) or isinstance(batches, (Iterator, torch.Tensor)):
        raise TypeError(
            "batches must be a re-iterable collection of batches (a DataLoader, a list, "
            f"TensorBatches), got {describe(batches)}"
        )
    if _length(batches) == 0:
        raise ValueError(f"batches must hold at least one batch, got {describe(batches)}")
    if (steps is None) == (epochs is None):
        raise ValueError(
            f"steps or epochs must be given, exactly one of them, got steps={steps!r}, "
            f"epochs={epochs!r}"
        )
    if steps is not None:
        check_int("steps", steps, minimum=1)
    if epochs is not None:
        check_int("epochs", epochs, minimum=1)
    _check_positive("lr", lr)
    if grad_clip is not None:
        _check_positive("grad_clip", grad_clip)
    check_float("weight_decay", weight_decay, low=0.0)
    if optimizer is not None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer or None, got {describe(optimizer)}"
            )
        own = {id(p) for p in model.parameters()}
        if not any(id(p) in own for g in optimizer.param_groups for p in g["params"]):
            raise ValueError("optimizer must hold the model's parameters, got one holding none")
    if scheduler not in ("cosine", None):
        raise ValueError(f"scheduler must be 'cosine' or None, got {scheduler!r}")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(
            f"eval_fn must be callable as eval_fn(model) or None, got {describe(eval_fn)}"
        )
    if eval_every is not None:
        check_int("eval_every", eval_every, minimum=1)
        if eval_fn is None:
            raise ValueError("eval_every needs an eval_fn, got eval_fn=None")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {describe(progress)}")
    if not isinstance(desc, str):
        raise TypeError(f"desc must be a str, got {describe(desc)}")
    if epochs is not None and scheduler == "cosine" and _length(batches) is None:
        raise ValueError(
            "batches must have a len() when epochs and scheduler='cosine' are used together "
            f"(the schedule needs the number of steps), got {describe(batches)}; give steps instead"
        )


def _floats(name: str, record: object) -> dict[str, float]:
    """Check a ``{name: number}`` dict (numbers may be 0-d tensors) and return plain floats."""
    if not isinstance(record, Mapping):
        raise TypeError(f"{name} must be a dict of str to float, got {describe(record)}")
    out = {}
    for key, value in record.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if (
            not isinstance(key, str)
            or isinstance(value, bool)
            or not isinstance(value, (int, float))
        ):
            raise TypeError(
                f"{name} must be a dict of str to float, got {key!r}: {describe(value)}"
            )
        out[key] = float(value)
    return out


def _split_loss(output: object, step: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Accept ``loss`` or ``(loss, logs)`` from ``loss_fn`` and check the loss is a scalar."""
    logs: dict[str, float] = {}
    loss = output
    if isinstance(output, tuple) and len(output) == 2:
        loss, logs = output[0], _floats(f"loss_fn's logs at step {step}", output[1])
    if not (isinstance(loss, torch.Tensor) and loss.ndim == 0 and loss.is_floating_point()):
        raise TypeError(
            f"loss_fn must return a scalar float tensor or (loss, dict), got {describe(loss)} "
            f"at step {step}"
        )
    if not loss.requires_grad:
        raise ValueError(
            f"loss_fn must return a loss that depends on the model's parameters "
            f"(requires_grad=True), got one without a graph at step {step}"
        )
    return loss, logs


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
        if count == 0:
            raise ValueError(
                f"batches must yield at least one batch, got none from {describe(batches)}"
            )
        epoch += 1


# ---------------------------------------------------------------------------- benchmark log
TRAIN_LOG_ENV = "MMBOOK_TRAIN_LOG"


def _rows(batch: Any) -> int:
    """The batch size: the first dimension of the first tensor in ``batch`` (0 if none)."""
    sizes: list[int] = []

    def note(t: torch.Tensor) -> torch.Tensor:
        sizes.append(t.shape[0] if t.ndim else 1)
        return t

    _map_tensors(note, batch)
    return sizes[0] if sizes else 0


def default_optimizer(
    model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """:class:`mmlib.optim.AdamW` on ``model.parameters()``, fused where torch has the kernel.

    The fused AdamW updates every parameter tensor in one kernel; the plain one runs about
    five small operations per tensor, which on a small model costs more than the update
    itself (a 30-tensor GPT of chapter 6.1: 1.7 ms a step plain, 0.3 ms fused, on 2 CPU
    cores). Both compute the same update, up to rounding. Used when every parameter is a
    floating-point tensor on the CPU or a CUDA device, all on one device.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    _check_positive("lr", lr)
    check_float("weight_decay", weight_decay, low=0.0)
    params = list(model.parameters())
    if not params:
        raise ValueError(
            f"model must have parameters to optimise, got a {type(model).__name__} with none"
        )
    devices = {p.device.type for p in params}
    fused = len(devices) == 1 and devices <= {"cpu", "cuda"}
    fused = fused and all(p.is_floating_point() for p in params)
    return AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


def _flops_per_step(model: nn.Module, loss_fn: Callable, batch: Any, device: torch.device) -> int:
    """FLOPs of one forward + backward pass of ``loss_fn`` on ``batch``, counted by torch.

    Runs on a deep copy of ``model`` with every random number generator saved and restored,
    so neither the model nor later random draws see it. The optimizer step is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    cuda = [device.index or 0] if device.type == "cuda" else []
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            twin = copy.deepcopy(model).train()
            with FlopCounterMode(display=False) as counter:
                loss, _ = _split_loss(loss_fn(twin, batch), 1)
                loss.backward()
            return int(counter.get_total_flops())
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _log_run(path: str, record: dict[str, Any], model, loss_fn, batch, device) -> None:
    """Append ``record`` plus the FLOP count as one JSON line to ``path``."""
    try:
        record["flops_per_step"] = _flops_per_step(model, loss_fn, batch, device)
    except Exception as error:  # a benchmark must never break the run it measures
        record["flops_per_step"], record["flops_error"] = None, f"{type(error).__name__}: {error}"
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def _bars_disabled() -> bool:
    """True when ``TQDM_DISABLE`` is set (``make test``, ``make notebooks``): tqdm's notebook
    widget ignores it, so it is read here, on every call."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def _evaluate(model: nn.Module, eval_fn: Callable, device: torch.device) -> dict[str, float]:
    """Run ``eval_fn(model)`` in eval mode without gradients, leaving the RNG untouched."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    model.eval()
    try:
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            return _floats("eval_fn's result", eval_fn(model))
    finally:
        model.train()


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Any],
    batches: Iterable[Any],
    *,
    steps: int | None = None,
    epochs: int | None = None,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    weight_decay: float = 0.0,
    scheduler: str | None = "cosine",
    grad_clip: float | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    eval_every: int | None = None,
    progress: bool = True,
    desc: str = "train",
    ddp: bool | None = None,
) -> History:
    """Train ``model`` in place for ``steps`` optimizer steps or ``epochs`` passes; return History.

    - ``loss_fn(model, batch)`` returns a scalar loss tensor, or ``(loss, {name: float})``
      whose floats are recorded in ``History.logs``. ``batch`` is what ``batches`` yields,
      moved to the device by :func:`to_device`.
    - ``batches``: a ``DataLoader``, a list, :class:`TensorBatches`... anything that can be
      iterated again and again; with ``steps`` it is cycled as often as needed.
    - ``optimizer``: default :func:`default_optimizer` (AdamW, fused); pass your own
      (built on ``model.parameters()``) to keep its state across calls, then ``lr`` and
      ``weight_decay`` are not used. ``scheduler='cosine'`` decays the rate to 0 over the run.
    - ``eval_fn(model) -> {name: float}`` runs every ``eval_every`` steps and after the last
      step, in ``model.eval()`` mode under ``torch.no_grad()``; it does not disturb the RNG, so
      training is the same with or without it.
    - ``seed`` seeds Python, NumPy and torch first: on the CPU, the same seed and the same
      model give bit-identical weights.
    - ``ddp`` (data-parallel): ``None`` turns it on under ``torchrun`` (``WORLD_SIZE > 1``).
      Then ``loss_fn`` gets the ``DistributedDataParallel`` wrapper (call ``model(...)``, not
      other methods), each process takes its slice of every global batch (see
      :func:`shard_batch`; all processes use the same seed so they see the same batches), and
      only rank 0 shows progress. ``eval_fn`` gets the plain model on every process.
    - With ``MMBOOK_TRAIN_LOG`` set to a file name, one JSON line per run is appended to it
      (``desc, steps, samples, seconds, device, threads, flops_per_step``...), for ``make bench``.
    """
    _check_arguments(
        model,
        loss_fn,
        batches,
        steps,
        epochs,
        lr,
        optimizer,
        weight_decay,
        scheduler,
        grad_clip,
        eval_fn,
        eval_every,
        progress,
        desc,
    )
    device = get_device() if device is None else _as_device("device", device)
    use_ddp = distributed.ddp_requested(ddp)
    seed_everything(seed)
    length = _length(batches)  # batches per epoch, if known
    total = steps if steps is not None else None if length is None else epochs * length

    run = distributed.start_distributed(device) if use_ddp else None
    rank, world_size = (run.rank, run.world_size) if run else (0, 1)
    device = run.device if run else device
    model.to(device).train()
    net = model
    if run:
        device_ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=device_ids)
    if optimizer is None:
        optimizer = default_optimizer(model, lr=lr, weight_decay=weight_decay)
    schedule = None
    if scheduler == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    bar_options = {} if progress and rank == 0 and not _bars_disabled() else {"disable": True}
    bar = tqdm(total=total, desc=desc, **bar_options)
    log_path = os.environ.get(TRAIN_LOG_ENV) if rank == 0 else None
    first_batch, samples = None, 0
    history, start, step = History(), time.perf_counter(), 0
    try:
        for batch in _epochs_of(batches, epochs):
            step += 1
            if world_size > 1:
                batch = shard_batch(batch, rank, world_size)
            if log_path:
                samples += _rows(batch) * world_size
                first_batch = batch if first_batch is None else first_batch
            loss, logs = _split_loss(loss_fn(net, to_device(batch, device)), step)
            values = torch.tensor([loss.item(), *logs.values()], dtype=torch.float64)
            if run:
                values = distributed.mean_across_processes(values.to(device)).cpu()
            loss_value = float(values[0])
            if not math.isfinite(loss_value):
                raise ValueError(
                    f"loss must be finite, got {loss_value} at step {step}; lower lr, "
                    "set grad_clip, or check the data and loss_fn"
                )
            history.loss.append(loss_value)
            history.lr.append(float(optimizer.param_groups[0]["lr"]))
            history.logs.append(dict(zip(logs, values[1:].tolist(), strict=True)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if schedule is not None:
                schedule.step()
            bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
            bar.update(1)
            last = step == steps
            if eval_fn is not None and eval_every is not None and step % eval_every == 0:
                history.steps.append(step)
                history.metrics.append(_evaluate(model, eval_fn, device))
            if last:
                break
        if eval_fn is not None and (not history.steps or history.steps[-1] != step):
            history.steps.append(step)
            history.metrics.append(_evaluate(model, eval_fn, device))
    finally:
        bar.close()
    history.seconds = time.perf_counter() - start
    if log_path:
        record = {
            "desc": desc,
            "steps": step,
            "samples": samples,
            "seconds": history.seconds,
            "device": device.type,
            "threads": torch.get_num_threads(),
            "world_size": world_size,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        _log_run(log_path, record, model, loss_fn, to_device(first_batch, device), device)
    return history

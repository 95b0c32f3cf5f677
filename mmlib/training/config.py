"""The options of a training run, checked once when they are set: :class:`TrainConfig`.

Also the checks :func:`mmlib.training.loop.train` makes of what it is given (the model, the
loss function, the batches, an optimizer, an evaluation function) and of what ``loss_fn``
returns, so that the loop itself reads as the algorithm.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mmlib.validate import check_float, check_int, check_positive, check_type, describe

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """How long and how fast to train; ``TrainConfig(steps=200, lr=3e-3)``.

    - ``steps`` optimizer steps (cycling the batches) or ``epochs`` passes: exactly one.
    - ``lr`` and ``weight_decay`` of the default AdamW; ``scheduler="cosine"`` decays the
      rate to 0 over the run (``None``: constant); ``grad_clip`` caps the gradient's norm.
    - ``seed`` seeds Python, NumPy and torch before the run; ``device`` ("cpu", "cuda",
      "mps", a ``torch.device``; default the best available).
    - ``eval_every`` steps to run ``eval_fn`` (it also runs after the last step).
    - ``progress`` shows a bar labelled ``desc`` (not when ``TQDM_DISABLE`` is set).
    - ``ddp`` (data-parallel): ``None`` turns it on under ``torchrun`` (``WORLD_SIZE > 1``);
      each process then takes its slice of every global batch, and ``loss_fn`` gets the
      ``DistributedDataParallel`` wrapper (call ``model(...)``, not other methods).
    """

    steps: int | None = None
    epochs: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str | None = "cosine"
    grad_clip: float | None = None
    seed: int = 0
    device: str | torch.device | None = None
    eval_every: int | None = None
    progress: bool = True
    desc: str = "train"
    ddp: bool | None = None

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(
                f"steps or epochs must be given, exactly one of them, got steps={self.steps!r}, "
                f"epochs={self.epochs!r}"
            )
        for name in ("steps", "epochs", "eval_every"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_positive("lr", self.lr)
        check_float("weight_decay", self.weight_decay, low=0.0)
        if self.scheduler not in ("cosine", None):
            raise ValueError(f"scheduler must be 'cosine' or None, got {self.scheduler!r}")
        if self.grad_clip is not None:
            check_positive("grad_clip", self.grad_clip)
        check_int("seed", self.seed)
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        if not isinstance(self.progress, bool):
            raise TypeError(f"progress must be a bool, got {describe(self.progress)}")
        if self.ddp is not None and not isinstance(self.ddp, bool):
            raise TypeError(f"ddp must be True, False or None, got {describe(self.ddp)}")
        if not isinstance(self.desc, str):
            raise TypeError(f"desc must be a str, got {describe(self.desc)}")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (checked again)."""
        if "steps" in changes and "epochs" not in changes:
            changes["epochs"] = None
        elif "epochs" in changes and "steps" not in changes:
            changes["steps"] = None
        return dataclasses.replace(self, **changes)

    def total(self, batches: Iterable[Any]) -> int | None:
        """The number of optimizer steps of the run (None: epochs over batches without len)."""
        if self.steps is not None:
            return self.steps
        length = _length(batches)
        return None if length is None else self.epochs * length

    def bars(self, rank: int) -> bool:
        """Whether this process shows a progress bar. ``TQDM_DISABLE`` (set by ``make test``
        and ``make notebooks``) is read on every call: tqdm's notebook widget ignores it."""
        disabled = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
        return self.progress and rank == 0 and not disabled


def _length(batches: object) -> int | None:
    """``len(batches)``, or None for iterables without a length (some DataLoaders raise)."""
    try:
        return len(batches)
    except TypeError:
        return None


def check_inputs(model, loss_fn, batches, optimizer, eval_fn, config: TrainConfig) -> None:
    """What :func:`~mmlib.training.loop.train` is given, checked before it starts."""
    check_type("model", model, nn.Module, "torch.nn.Module")
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
    check_type("config", config, TrainConfig, "TrainConfig or None")
    if optimizer is not None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer or None, got {describe(optimizer)}"
            )
        own = {id(p) for p in model.parameters()}
        if not any(id(p) in own for g in optimizer.param_groups for p in g["params"]):
            raise ValueError("optimizer must hold the model's parameters, got one holding none")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(
            f"eval_fn must be callable as eval_fn(model) or None, got {describe(eval_fn)}"
        )
    if config.eval_every is not None and eval_fn is None:
        raise ValueError("eval_every needs an eval_fn, got eval_fn=None")
    if config.epochs is not None and config.scheduler == "cosine" and _length(batches) is None:
        raise ValueError(
            "batches must have a len() when epochs and scheduler='cosine' are used together "
            f"(the schedule needs the number of steps), got {describe(batches)}; give steps instead"
        )


def floats(name: str, record: object) -> dict[str, float]:
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


def split_loss(output: object, step: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Accept ``loss`` or ``(loss, logs)`` from ``loss_fn`` and check the loss is a scalar."""
    logs: dict[str, float] = {}
    loss = output
    if isinstance(output, tuple) and len(output) == 2:
        loss, logs = output[0], floats(f"loss_fn's logs at step {step}", output[1])
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

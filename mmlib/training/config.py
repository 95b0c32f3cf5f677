"""The options of a training run, checked once when they are set: :class:`TrainConfig`.

Also the checks :func:`mmlib.training.loop.train` makes of what it is given (the model, the
loss function, the batches, an optimizer, an evaluation function) and of what ``loss_fn``
returns, so that the loop itself reads as the algorithm.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from types import NoneType
from typing import Any

import torch
from torch import nn

from mmlib.validate import (
    check_choice,
    check_float,
    check_int,
    check_positive,
    check_type,
    describe,
    require,
)

__all__ = ["TrainConfig"]


def _check_seed(name: str, seed: object) -> None:
    check_float(name, check_int(name, seed), low=0, high=2**32 - 1)


#: How :class:`TrainConfig` checks each option: ``rule(name, value)`` raises TypeError or
#: ValueError naming it. The options in ``_OFF`` may also be None (not used).
_RULES: dict[str, Callable[[str, Any], object]] = {
    "steps": partial(check_int, minimum=1),
    "epochs": partial(check_int, minimum=1),
    "eval_every": partial(check_int, minimum=1),
    "lr": check_positive,
    "weight_decay": partial(check_float, low=0.0),
    "scheduler": partial(check_choice, choices=("cosine", None)),
    "grad_clip": check_positive,
    "seed": _check_seed,
    "progress": partial(check_type, kind=bool),
    "ddp": partial(check_type, kind=bool, what="bool or None"),
    "desc": partial(check_type, kind=str),
}
_OFF = {"steps", "epochs", "eval_every", "grad_clip", "ddp"}


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
        given = f"steps={self.steps}, epochs={self.epochs}"
        exactly_one = (self.steps is None) != (self.epochs is None)
        require(exactly_one, "steps or epochs", "given, exactly one of them", given)
        for name, rule in _RULES.items():
            value = getattr(self, name)
            if value is not None or name not in _OFF:
                rule(name, value)

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
    check_type("loss_fn", loss_fn, Callable, "callable loss_fn(model, batch)")
    if not isinstance(batches, Iterable) or isinstance(batches, (Iterator, torch.Tensor)):
        raise TypeError(f"batches must be a re-iterable collection, got {describe(batches)}")
    require(_length(batches) != 0, "batches", "non-empty", describe(batches))
    check_type("config", config, TrainConfig, "TrainConfig or None")
    check_type("optimizer", optimizer, (torch.optim.Optimizer, NoneType), "torch Optimizer or None")
    own = {id(p) for p in model.parameters()}
    groups = [] if optimizer is None else optimizer.param_groups
    held = optimizer is None or any(id(p) in own for g in groups for p in g["params"])
    require(held, "optimizer", "one holding the model's parameters", "one holding none")
    check_type("eval_fn", eval_fn, (Callable, NoneType), "callable eval_fn(model) or None")
    with_fn = eval_fn is not None or config.eval_every is None
    require(with_fn, "eval_every", "None without an eval_fn", config.eval_every)
    sized = config.epochs is None or config.scheduler != "cosine" or _length(batches) is not None
    require(sized, "batches", "sized (len()) for epochs with a cosine schedule", describe(batches))


def floats(name: str, record: object) -> dict[str, float]:
    """Check a ``{name: number}`` dict (numbers may be 0-d tensors) and return plain floats."""
    check_type(name, record, Mapping, "dict of str to float")
    out = {}
    for key, value in record.items():
        value = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (isinstance(key, str) and number):
            raise TypeError(f"{name} must map str to float, got {key!r}: {describe(value)}")
        out[key] = float(value)
    return out


def split_loss(output: object, step: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Accept ``loss`` or ``(loss, logs)`` from ``loss_fn`` and check the loss is a scalar."""
    logs: dict[str, float] = {}
    loss = output
    if isinstance(output, tuple) and len(output) == 2:
        loss, logs = output[0], floats(f"loss_fn's logs at step {step}", output[1])
    if not (isinstance(loss, torch.Tensor) and loss.ndim == 0 and loss.is_floating_point()):
        raise TypeError(f"loss_fn must return a float scalar, got {describe(loss)} at step {step}")
    require(loss.requires_grad, "loss_fn's loss", f"computed from the model at step {step}", loss)
    return loss, logs

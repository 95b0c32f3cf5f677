"""What a training run recorded: losses, learning rates, logged values and evaluations."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mmlib.modes import evaluating
from mmlib.training.config import floats
from mmlib.validate import check_choice, require

__all__ = ["History"]


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
    samples: int = 0  # examples seen, over all processes

    def record(self, step: int, values: torch.Tensor, logs: dict, lr: float) -> None:
        """Note step ``step``: ``values`` holds the loss, then one value per name in ``logs``."""
        loss = float(values[0])
        cure = "finite (lower lr, set grad_clip, or check the data and loss_fn)"
        require(math.isfinite(loss), "loss", cure, f"{loss} at step {step}")
        self.loss.append(loss)
        self.lr.append(float(lr))
        self.logs.append(dict(zip(logs, values[1:].tolist(), strict=True)))

    def evaluate(self, step: int, model: nn.Module, eval_fn: Callable, device: torch.device):
        """Run ``eval_fn(model)`` after step ``step`` in eval mode without gradients, leaving
        the random number generators untouched, and note what it returns."""
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), evaluating(model):
            metrics = floats("eval_fn's result", eval_fn(model))
        self.steps.append(step)
        self.metrics.append(metrics)

    def names(self) -> list[str]:
        """Every name :meth:`final` accepts: ``"loss"``, logged names, metric names."""
        names = ["loss"] if self.loss else []
        for record in self.logs + self.metrics:
            names += [name for name in record if name not in names]
        return names

    def final(self, name: str) -> float:
        """The last recorded value of ``name`` (``"loss"``, an ``eval_fn`` metric, a log)."""
        check_choice("name", name, self.names())
        if name == "loss":
            return self.loss[-1]
        for record in reversed(self.metrics):
            if name in record:
                return record[name]
        return next(record[name] for record in reversed(self.logs) if name in record)

    def plot(self, ax: Any = None) -> Any:
        """Draw the loss per step, and ``eval_fn`` metrics on a twin axis; return the axis."""
        import matplotlib.pyplot as plt

        require(bool(self.loss), "history", "non-empty to plot", "an empty one")
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

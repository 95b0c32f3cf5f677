"""The benchmark log of ``make bench``: one JSON line per training run of a notebook.

``install(path)`` appends a hook to :data:`mmlib.training.loop.RUN_HOOKS`; after every
``train()`` run it writes ``desc, steps, samples, seconds, device, threads, world_size,
parameters`` and ``flops_per_step`` (one forward and backward pass of the run's first batch,
counted by ``torch.utils.flop_counter`` on a copy of the model with every random number
generator saved and restored, so the notebook's results do not change). ``tools/bench.py``
runs ``install`` in each kernel before the notebook's first cell, and takes the seconds the
hook spent (``hook_s``) off the notebook's time.

A run of :data:`CEILING_MIN_S` seconds or more also gets its own **ceiling**: the best FLOP/s
of the same model's forward and backward pass on its first batch and on that batch repeated,
doubling it until one pass takes :data:`CEILING_PASS_S` or the batch would pass
:data:`CEILING_SAMPLES`. Large batches make the per-step overheads (Python, the optimizer's
update, small kernels, evaluations) vanish next to the arithmetic; the best over the sizes,
not the largest, counts, because on a small CPU cache a very large batch can be slower per
FLOP than a middling one. Each size gets its FLOPs counted and the best of
:data:`CEILING_PASSES` timed passes. The run's
FLOP/s over that ceiling says how much of what this model's shapes allow on this machine the
run gets; the ceiling over the matmul peak says how far those shapes are from the peak at all.
"""

from __future__ import annotations

import copy
import json
import random
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from mmlib.training.batches import batch_size
from mmlib.training.config import split_loss
from mmlib.training.loop import RUN_HOOKS, Run

CEILING_MIN_S = 5.0  # runs at least this long get their own ceiling measured
CEILING_PASS_S = 0.25  # a pass this long is large enough: the per-step overheads are noise there
CEILING_SAMPLES = 2048  # ... and the batch grows no further than this
CEILING_PASSES = 3  # timed forward + backward passes at that batch; the best counts


@contextmanager
def _twin(run: Run):
    """A training-mode copy of ``run.model``, with every random number generator saved before
    and restored after, so that measuring it changes nothing the notebook computes next."""
    cuda = [run.device.index or 0] if run.device.type == "cuda" else []
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            yield copy.deepcopy(run.model).train()
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _pass(run: Run, model: torch.nn.Module, batch) -> None:
    """One forward and backward pass of ``run.loss_fn``; gradients dropped afterwards."""
    loss, _ = split_loss(run.loss_fn(model, batch), 1)
    loss.backward()
    model.zero_grad(set_to_none=True)


def _counted(run: Run, model: torch.nn.Module, batch) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        _pass(run, model, batch)
    return int(counter.get_total_flops())


def flops_per_step(run: Run) -> int:
    """FLOPs of one forward + backward pass of ``run.loss_fn`` on ``run.first_batch``."""
    with _twin(run) as model:
        return _counted(run, model, run.first_batch)


def repeat_batch(batch, factor: int):
    """``batch`` with every tensor in it repeated ``factor`` times along its first dimension
    (tuples and lists are walked; anything else passes through)."""
    if isinstance(batch, torch.Tensor):
        return batch.repeat(factor, *[1] * (batch.ndim - 1))
    if isinstance(batch, (tuple, list)):
        return type(batch)(repeat_batch(part, factor) for part in batch)
    return batch


def _seconds(run: Run, model: torch.nn.Module, batch) -> float:
    """Wall time of one forward and backward pass (waiting for the GPU, if there is one)."""
    sync = torch.cuda.synchronize if run.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    _pass(run, model, batch)
    sync()
    return time.perf_counter() - start


def ceiling(run: Run) -> dict:
    """The run's own ceiling: the best FLOP/s of the model's forward + backward pass over
    batches from the run's own, doubling (see the module's docstring)."""
    size, factor, best = batch_size(run.first_batch), 1, (0.0, 0)
    with _twin(run) as model:
        while True:
            batch = repeat_batch(run.first_batch, factor)
            flops = _counted(run, model, batch)  # also warms up this size
            seconds = min(_seconds(run, model, batch) for _ in range(CEILING_PASSES))
            best = max(best, (flops / seconds, factor * size))
            if seconds >= CEILING_PASS_S or 2 * factor * size > CEILING_SAMPLES:
                break
            factor *= 2
    return {"ceiling_flops_per_s": best[0], "ceiling_batch": best[1]}


def record(run: Run) -> dict:
    """The JSON record of one run."""
    out = {
        "desc": run.config.desc,
        "steps": len(run.history.loss),
        "samples": run.history.samples,
        "seconds": run.history.seconds,
        "device": run.device.type,
        "threads": torch.get_num_threads(),
        "world_size": run.world_size,
        "parameters": sum(p.numel() for p in run.model.parameters()),
    }
    try:
        out["flops_per_step"] = flops_per_step(run)
    except Exception as error:  # a benchmark must never break the run it measures
        out["flops_per_step"], out["flops_error"] = None, f"{type(error).__name__}: {error}"
    if out["seconds"] >= CEILING_MIN_S:
        try:
            out |= ceiling(run)
        except Exception as error:
            out["ceiling_error"] = f"{type(error).__name__}: {error}"
    return out


def install(path: str | Path) -> None:
    """Append one JSON line per ``train()`` run to ``path`` from now on (in this process)."""

    def log(run: Run) -> None:
        start = time.perf_counter()
        line = record(run)
        line["hook_s"] = time.perf_counter() - start  # bench takes it off the notebook's time
        with open(path, "a", encoding="utf-8") as log_file:
            log_file.write(json.dumps(line) + "\n")

    RUN_HOOKS[:] = [hook for hook in RUN_HOOKS if getattr(hook, "train_log", None) is None]
    log.train_log = str(path)
    RUN_HOOKS.append(log)

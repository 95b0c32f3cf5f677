"""The benchmark log of ``make bench``: one JSON line per training run of a notebook.

``install(path)`` appends a hook to :data:`mmlib.training.loop.RUN_HOOKS`; after every
``train()`` run it writes ``desc, steps, samples, seconds, device, threads, world_size,
parameters`` and ``flops_per_step`` (one forward and backward pass of the run's first batch,
counted by ``torch.utils.flop_counter`` on a copy of the model with every random number
generator saved and restored, so the notebook's results do not change). ``tools/bench.py``
runs ``install`` in each kernel before the notebook's first cell.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import numpy as np
import torch

from mmlib.training.config import split_loss
from mmlib.training.loop import RUN_HOOKS, Run


def flops_per_step(run: Run) -> int:
    """FLOPs of one forward + backward pass of ``run.loss_fn`` on ``run.first_batch``."""
    from torch.utils.flop_counter import FlopCounterMode

    cuda = [run.device.index or 0] if run.device.type == "cuda" else []
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            twin = copy.deepcopy(run.model).train()
            with FlopCounterMode(display=False) as counter:
                loss, _ = split_loss(run.loss_fn(twin, run.first_batch), 1)
                loss.backward()
            return int(counter.get_total_flops())
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


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
    return out


def install(path: str | Path) -> None:
    """Append one JSON line per ``train()`` run to ``path`` from now on (in this process)."""

    def log(run: Run) -> None:
        with open(path, "a", encoding="utf-8") as log_file:
            log_file.write(json.dumps(record(run)) + "\n")

    RUN_HOOKS[:] = [hook for hook in RUN_HOOKS if getattr(hook, "train_log", None) is None]
    log.train_log = str(path)
    RUN_HOOKS.append(log)

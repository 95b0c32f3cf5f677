"""How fast is this device? Two measurements used by chapter 7 and ``make bench``.

- :func:`measure_matmul_flops`: the best FLOP/s of square matrix products, the ceiling.
- :func:`profile_step`: one training step under ``torch.profiler``, its time split by phase
  (forward, backward, optimizer, other) and by operation.

A square product ``(n, n) @ (n, n)`` costs ``2 n^3`` floating-point operations (one multiply
and one add per term of each of the ``n^2`` dot products of length ``n``). Timing it gives the
throughput a training run can hope for at best: almost all of a network's work is such
products. Chapter 7 plots it against the matrix size; ``make bench`` (tools/bench.py) uses it
as the peak that training FLOP/s are compared with.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile

from mmlib.device import get_device
from mmlib.validate import check_int, check_ints, check_type, describe

__all__ = [
    "PHASES",
    "StepProfile",
    "best_time",
    "matmul_flop_count",
    "measure_matmul_flops",
    "phase_of",
    "profile_step",
]

_DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)


def matmul_flop_count(size: int) -> int:
    """Floating-point operations of one ``(size, size) @ (size, size)`` product: ``2 size^3``."""
    check_int("size", size, minimum=1)
    return 2 * size**3


def _device(device: object) -> torch.device:
    if device is None:
        return get_device()
    check_type("device", device, (str, torch.device), "str, a torch.device or None")
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must name a torch device such as 'cpu', got {device!r}") from None
    get_device(parsed.type)  # ValueError when that kind of device is not there
    return parsed


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _check_matmul(size: object, repeats: object, dtype: object) -> None:
    check_ints(minimum=1, size=size, repeats=repeats)
    if dtype not in _DTYPES:
        raise TypeError(f"dtype must be one of {list(_DTYPES)}, got {describe(dtype)}")


def best_time(
    fn: Callable[[], object], repeats: int = 5, device: str | torch.device | None = None
) -> float:
    """The shortest of ``repeats`` wall-clock times of ``fn()``, in seconds.

    One untimed call comes first (it pays for lazy initialisation: cuBLAS handles, thread
    pools, caches). Each timed call is bracketed by synchronisation of ``device`` (default:
    :func:`mmlib.get_device`), so queued GPU work is counted; the *fastest* call counts, so
    another process briefly stealing the CPU does not inflate the figure.
    """
    check_type("fn", fn, Callable, "callable taking no arguments")
    check_int("repeats", repeats, minimum=1)
    device = _device(device)
    best = float("inf")
    for attempt in range(repeats + 1):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        if attempt > 0:  # attempt 0 warms up
            best = min(best, time.perf_counter() - start)
    return best


def measure_matmul_flops(
    size: int = 1024,
    repeats: int = 5,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> float:
    """The best FLOP/s of ``repeats`` timed products of two random ``(size, size)`` matrices.

    Timed with :func:`best_time`: one untimed product, then the fastest of ``repeats``.
    ``dtype`` is one of ``torch.float64``, ``float32``, ``bfloat16`` or ``float16``;
    ``device`` defaults to :func:`mmlib.get_device`. The inputs come from a fixed-seed generator
    on the CPU, so the global random state is not touched.

    Returns ``matmul_flop_count(size) / best_seconds`` as a float (FLOP/s, not GFLOP/s).
    """
    _check_matmul(size, repeats, dtype)
    device = _device(device)
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device, dtype) for _ in range(2))
    with torch.no_grad():
        best = best_time(lambda: torch.mm(a, b), repeats=repeats, device=device)
    return matmul_flop_count(size) / max(best, 1e-9)


# ---------------------------------------------------------------------------- profiling
#: The phases of a training step that :func:`profile_step` tells apart, in order.
PHASES = ("forward", "backward", "optimizer", "other")


def phase_of(event: object) -> str:
    """The phase of a profiler event, from the events it ran inside (``event.cpu_parent``).

    ``"forward"`` under a ``torch.profiler.record_function("forward")`` label (put it around
    the loss computation); ``"backward"`` under autograd's ``autograd::engine::evaluate_function``
    events; ``"optimizer"`` under ``Optimizer.step`` (every ``torch.optim`` optimizer labels its
    step); ``"other"`` for the rest (batching, moving data, zeroing gradients).
    """
    if not isinstance(getattr(event, "name", None), str) or not hasattr(event, "cpu_parent"):
        raise TypeError(f"event must be a profiler event (name, cpu_parent), got {describe(event)}")
    while event is not None:
        name = event.name
        if name == "forward":
            return "forward"
        if name.startswith("autograd::engine::evaluate_function"):
            return "backward"
        if name.startswith("Optimizer.step"):
            return "optimizer"
        event = event.cpu_parent
    return "other"


def _operation_name(event: object) -> str:
    """The name of the operation behind ``event``: on a GPU, a kernel's time is recorded on the
    CUDA call that launched it (``cudaLaunchKernel``...), so climb to the operation that made it."""
    while event.name.startswith("cu") and event.cpu_parent is not None:
        event = event.cpu_parent
    return event.name


@dataclass
class StepProfile:
    """What :func:`profile_step` measured: self times in milliseconds.

    ``phase_ms``: phase name (:data:`PHASES`) -> time. ``op_ms``: operation name -> time, and
    ``op_phase``: operation name -> the phase where it spent most of that time.
    ``num_events``: how many events the profiler recorded. On CUDA the times are the device
    time of each operation's kernels; elsewhere its CPU time.
    """

    phase_ms: dict[str, float]
    op_ms: dict[str, float]
    op_phase: dict[str, str]
    num_events: int

    @property
    def total_ms(self) -> float:
        """Sum of the self times of all operations, in ms (the step's measured time)."""
        return sum(self.phase_ms.values())

    def top_ops(self, k: int = 10) -> list[tuple[str, float, str]]:
        """The ``k`` costliest operations as ``(name, ms, phase)``, costliest first."""
        check_int("k", k, minimum=1)
        ranked = sorted(self.op_ms.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [(name, ms, self.op_phase[name]) for name, ms in ranked]


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send what C++ code writes to file descriptor 2 to /dev/null meanwhile: the profiler's
    library (Kineto) logs time-stamped lines there, which a notebook would store as output."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def profile_step(
    step: Callable[[], object], device: str | torch.device | None = None
) -> StepProfile:
    """Run ``step()`` once under ``torch.profiler`` and split its time by phase and operation.

    ``step`` is a function of no arguments, e.g. ``lambda: train(model, loss_fn, batches,
    steps=1, ...)``; label its forward pass with ``record_function("forward")`` for
    :func:`phase_of` to find it. Run it once before, unprofiled, so that one-off set-up costs
    (memory allocation, lazy initialisation) do not count. ``device`` (default
    :func:`mmlib.get_device`): on CUDA, GPU activity is recorded and timed too.
    """
    check_type("step", step, Callable, "function of no arguments")
    device = _device(device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with _native_stderr_silenced():
        with profile(activities=activities) as prof:
            step()
        events = list(prof.events())
    on_gpu = device.type == "cuda"
    phase_ms = dict.fromkeys(PHASES, 0.0)
    op_ms: dict[str, float] = {}
    op_by_phase: dict[str, dict[str, float]] = {}
    for event in events:
        if event.device_type != torch.autograd.DeviceType.CPU:
            continue  # a GPU kernel: its time is counted with the CPU event that launched it
        ms = (event.self_device_time_total if on_gpu else event.self_cpu_time_total) / 1e3
        if ms <= 0:
            continue
        name, phase = _operation_name(event), phase_of(event)
        phase_ms[phase] += ms
        op_ms[name] = op_ms.get(name, 0.0) + ms
        shares = op_by_phase.setdefault(name, {})
        shares[phase] = shares.get(phase, 0.0) + ms
    op_phase = {name: max(shares, key=shares.get) for name, shares in op_by_phase.items()}
    return StepProfile(phase_ms, op_ms, op_phase, len(events))

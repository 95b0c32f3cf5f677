"""How fast is this machine right now? A reference training step, timed on one and two threads.

These 2-core machines differ and drift. The statistics page's AMD EPYC ran a 2048x2048 float32
matmul at 134 GFLOP/s (2026-12-04 02:37 UTC) and the whole book in 252 s; machines that report
the same name ran the matmul at 36 to 68 GFLOP/s in December 2026 and the book in 526 to 771 s.
They are not the same CPU: those read CPU family 23, model 1 (AMD's first Zen generation) at
1996 MHz, whose cores do at most 16 float32 FLOPs a cycle (two 128-bit FMA pipes), so two of them
reach about 102 GFLOP/s even at 3.2 GHz, that generation's highest boost; 134 GFLOP/s was a newer
core under the same name. Within one machine the reading moves within the hour too (the same
notebooks ran in 399 s and 647 s on one day).

``tests/nbval_budget.py`` therefore judges the budgets in the statistics page machine's seconds
(see that plugin); this check, run before the first notebook and after the last, gives it one
of its two speed estimates (the matmul) and prints under the notebook times what machine the
run was on (``tools.bench.cpu_kind``: the CPU's name, family, model and clock) and how fast.

The reference step is the book's commonest one: chapter 1's image encoder (width 8) on a batch
of 128 images, forward, backward and an Adam update. It runs in a fresh process, so that the
thread count is its own, in about 13 s with torch's import on these machines.

    python -m tools.machine_check
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tools.budgets import REFERENCE_REPORT

STEPS = 15
MATMUL_SIZE = 2048  # as tools.bench measures the CPU's peak


def _time_steps(threads: int, steps: int = STEPS) -> float:
    """Seconds per reference step on ``threads`` threads (after three warm-up steps)."""
    import torch

    from mmlib.encoders import ImageEncoder

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    encoder = ImageEncoder(dim=64, width=8)
    optimizer = torch.optim.Adam(encoder.parameters())
    images = torch.randn(128, 3, 32, 32)

    def step():
        loss = encoder(images).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def _matmul_flops(size: int = MATMUL_SIZE) -> float:
    """The best float32 FLOP/s of square products on two threads (chapter 7's timer, as
    ``tools.bench`` uses it)."""
    import torch

    from mmlib.training.profiling import measure_matmul_flops

    torch.set_num_threads(2)
    return measure_matmul_flops(size=size, repeats=5, device="cpu")


def _cpu() -> str:
    """This machine's CPU: name, family, model and clock (``tools.bench.cpu_kind``)."""
    from tools.bench import cpu_kind

    info = Path("/proc/cpuinfo")
    return cpu_kind(info.read_text() if info.exists() else "")


def measure() -> dict[str, float | str]:
    """Milliseconds per reference step on two threads and on one, their ratio, the matmul rate
    and the CPU (``tools.bench.cpu_kind``).

    Two threads are timed before and after the one-thread run and averaged, so a change of
    state during the check shows in both numbers rather than in the ratio alone."""
    two = [_time_steps(2)]
    one = _time_steps(1)
    two.append(_time_steps(2))
    two_ms, one_ms = 1e3 * sum(two) / 2, 1e3 * one
    return {
        "two_threads_ms": two_ms,
        "one_thread_ms": one_ms,
        "speedup": one_ms / two_ms,
        "matmul_gflops": _matmul_flops() / 1e9,
        "cpu": _cpu(),
    }


def reference(path: Path = REFERENCE_REPORT) -> dict | None:
    """The statistics page's measured machine: its CPU, date, matmul GFLOP/s and book seconds.

    None when the report is missing or has no CPU kernel with a matmul peak."""
    try:
        report = json.loads(path.read_text())
        kernel = report["kernels"]["mmbook-cpu"]
        return {
            "cpu": report["machine"]["cpu"],
            "date": report["machine"]["date"],
            "matmul_gflops": kernel["matmul_peak"]["flops"] / 1e9,
            "book_s": kernel["total_s"],
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run(python: str = sys.executable, timeout: float = 120.0) -> dict[str, float] | None:
    """:func:`measure` in a fresh ``python`` process; None if it fails or times out."""
    try:
        done = subprocess.run(
            [python, "-m", "tools.machine_check", "--json"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return json.loads(done.stdout) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, json.JSONDecodeError, OSError):
        return None


def describe(check: dict[str, float] | None, when: str = "", ref: dict | None = None) -> str:
    """One line for a report; ``when`` (``"before the notebooks"``) follows "machine check".

    With ``ref`` (from :func:`reference`) the matmul rate is also given as a share of the
    statistics page's machine, whose book time it names."""
    head = f"machine check {when}".rstrip()
    if check is None:
        return f"{head}: did not run"
    line = (
        f"{head}: a reference training step took {check['two_threads_ms']:.0f} ms"
        f" on 2 threads, {check['one_thread_ms']:.0f} ms on 1; the second thread gave"
        f" {check['speedup']:.2f}x"
    )
    if "matmul_gflops" in check:
        size = f"{MATMUL_SIZE}x{MATMUL_SIZE}"
        line += f"; a {size} matmul ran at {check['matmul_gflops']:.0f} GFLOP/s"
        if ref is not None:
            line += (
                f", {check['matmul_gflops'] / ref['matmul_gflops']:.2f} of the"
                f" {ref['matmul_gflops']:.0f} GFLOP/s of the statistics page's run"
                f" ({ref['cpu']}, {ref['date']}, whole book {ref['book_s']:.0f} s)"
            )
    if "cpu" in check:
        line += f"; CPU: {check['cpu']}"
    return line + " (python -m tools.machine_check)"


if __name__ == "__main__":
    result = measure()
    print(json.dumps(result) if "--json" in sys.argv else describe(result, ref=reference()))

"""How fast is this machine right now? A reference training step, timed on one and two threads.

The book's time budgets are wall-clock seconds on a 2-core machine, and these machines drift:
on one machine on one day the whole book took from 399 s to 647 s on two threads, and a
reference step's time on one thread, on two, and the ratio of the two all moved within the
hour. ``tests/nbval_budget.py`` runs this check before the first notebook and after the last
of every nbval run and prints it under the notebook times. It is a sample, not a record: two
readings of a few seconds each can miss a slow spell between them (the 647 s run read 36 and
40 ms on two threads, as did runs of the same notebooks at 399 s). It only reports; the
budgets stay in wall-clock seconds.

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

STEPS = 15


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


def measure() -> dict[str, float]:
    """Milliseconds per reference step on two threads and on one, and their ratio.

    Two threads are timed before and after the one-thread run and averaged, so a change of
    state during the check shows in both numbers rather than in the ratio alone."""
    two = [_time_steps(2)]
    one = _time_steps(1)
    two.append(_time_steps(2))
    two_ms, one_ms = 1e3 * sum(two) / 2, 1e3 * one
    return {"two_threads_ms": two_ms, "one_thread_ms": one_ms, "speedup": one_ms / two_ms}


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


def describe(check: dict[str, float] | None, when: str = "") -> str:
    """One line for a report; ``when`` (``"before the notebooks"``) follows "machine check"."""
    head = f"machine check {when}".rstrip()
    if check is None:
        return f"{head}: did not run"
    return (
        f"{head}: a reference training step took {check['two_threads_ms']:.0f} ms"
        f" on 2 threads, {check['one_thread_ms']:.0f} ms on 1; the second thread gave"
        f" {check['speedup']:.2f}x (python -m tools.machine_check)"
    )


if __name__ == "__main__":
    result = measure()
    print(json.dumps(result) if "--json" in sys.argv else describe(result))

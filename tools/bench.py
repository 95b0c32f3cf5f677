"""`make bench`: how fast the book runs, against its budgets and the machine's own limit.

    python -m tools.bench [--skip book|nbval|gpu ...] [--out FILE.json] [NOTEBOOK ...]

For each kernel (``mmbook-cpu``; ``mmbook-gpu`` too when CUDA is there) it measures:

- every notebook executed top to bottom with nbclient: wall time from the kernel's start to the
  last cell (as nbval counts it), less the seconds the training log itself spent (``hook_s``:
  FLOP counts and ceilings; the raw time is kept as ``wall_s``), and the kernel's peak memory.
  Notebooks are read into memory and never written back;
- every training run in the book: ``tools/train_log.py`` hooks ``mmlib.training.loop.train``
  and appends a JSON line per run to a log file (steps, samples,
  seconds, FLOPs per step, and for runs of 5 s or more the model's own ceiling), and every run
  of 5 s or more (at least the three longest) gets samples/s, FLOP/s, its share of its own
  ceiling and the ceiling's share of the machine's fp32 matmul peak;
- ``make nbval-<kernel>`` (its own timing plugin writes ``nbval-times-<kernel>.json``).

Once: ``make book`` from scratch and again with nothing changed. The report is JSON; ``make
stats`` turns it into the page book/stats.md (tools/stats_page.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools.budgets import BOOK_BUDGET_S, budget_of

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "bench"
NOTEBOOK_LIMIT_S = 60.0  # no notebook may take longer on the CPU kernel, whatever it declares
LONG_RUN_S = 5.0  # training runs this long or longer are reported one by one
TOP_RUNS = 3  # and at least this many, the longest
KERNEL_DEVICE = {"mmbook-cpu": "cpu", "mmbook-gpu": "cuda"}
NBVAL_TARGET = {"mmbook-cpu": "nbval-cpu", "mmbook-gpu": "nbval-gpu"}
MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}  # large enough to saturate each kind of device

# Appended to the in-memory copy of each notebook: the kernel reports its own peak memory.
PEAK_CELL = """\
import json as _j, resource as _r, sys as _s
_t = _s.modules.get("torch")
print(_j.dumps({
    "rss": _r.getrusage(_r.RUSAGE_SELF).ru_maxrss * (1 if _s.platform == "darwin" else 1024),
    "gpu": _t.cuda.max_memory_allocated() if _t and _t.cuda.is_initialized() else None,
}))"""


# ---------------------------------------------------------------------------- the machine
def cpu_model(cpuinfo: str) -> str:
    """The processor's name from the text of /proc/cpuinfo ('' when it names none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
            return value.strip()
    return ""


def cpu_kind(cpuinfo: str) -> str:
    """The first processor's name (:func:`cpu_model`), family, model and clock from the text of
    /proc/cpuinfo ("AMD EPYC, family 23, model 1, 1996 MHz"): one name covers different CPUs."""
    first = cpuinfo.split("\n\n")[0]
    fields = {}
    for line in first.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    parts = [cpu_model(first) or platform.processor() or "unknown CPU"]
    parts += [
        f"{key.split()[-1]} {fields[key]}" for key in ("cpu family", "model") if key in fields
    ]
    if "cpu MHz" in fields:
        parts.append(f"{float(fields['cpu MHz']):.0f} MHz")
    return ", ".join(parts)


def machine() -> dict:
    """Versions, processor, cores, date: where and when the numbers were taken."""
    import torch

    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    cpu = cpu_model(text)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(terse=True),
        "cpu": cpu or platform.processor() or platform.machine(),
        "cpu_kind": cpu_kind(text),  # family, model and clock: one name covers different CPUs
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def matmul_peak(device: str) -> dict:
    """The best fp32 FLOP/s of square matrix products through torch on ``device``."""
    import torch

    size, repeats = MATMUL_SIZE[device], 10
    try:
        from mmlib.training.profiling import measure_matmul_flops
    except ImportError:  # chapter 7's helper; measure here when it is not there
        measure_matmul_flops = None
    if measure_matmul_flops is not None:
        flops = measure_matmul_flops(size=size, repeats=repeats, device=device, dtype=torch.float32)
    else:
        a, b = (torch.randn(size, size, device=device) for _ in range(2))
        best = float("inf")
        for _ in range(repeats + 1):  # the first product warms up
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            a @ b
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        flops = 2 * size**3 / best
    return {"flops": float(flops), "size": size, "dtype": "float32"}


# ---------------------------------------------------------------------------- notebooks
def parse_peak(cell: dict) -> dict:
    """Peak memory in MB from the outputs of :data:`PEAK_CELL`."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")
    peak = json.loads(text.strip().splitlines()[-1])
    return {
        "peak_rss_mb": round(peak["rss"] / 2**20, 1),
        "peak_gpu_mb": None if peak["gpu"] is None else round(peak["gpu"] / 2**20, 1),
    }


def execute_timed(nb, path: Path, kernel: str, last: int) -> float:
    """Execute notebook ``nb`` (read from ``path``) on ``kernel`` in memory; the seconds from the
    kernel's start to the end of cell ``last`` (cells after it, added by a tool, do not count).
    """
    from nbclient import NotebookClient

    done: dict[int, float] = {}
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=600,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_executed=lambda cell, cell_index, **_: done.setdefault(
            cell_index, time.perf_counter()
        ),
    )
    start = time.perf_counter()
    client.execute()
    return max(t for index, t in done.items() if index <= last) - start


def run_notebook(path: Path, kernel: str, train_log: Path) -> dict:
    """Execute ``path`` on ``kernel`` in memory; wall time, peak memory, error if any."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    last = len(nb.cells) - 1
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    train_log.unlink(missing_ok=True)
    # the kernel logs every train() run (tools/train_log.py), installed before the first cell
    install = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import tools.train_log as log; "
    nb.cells.insert(0, nbformat.v4.new_code_cell(install + f"log.install({str(train_log)!r})"))
    last += 1
    result = {"path": path.relative_to(ROOT).as_posix(), "budget_s": budget_of(path)}
    try:
        seconds = execute_timed(nb, path, kernel, last)
    except Exception as error:  # report it with the others; main() fails at the end
        result["error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[-1]}"
        return result
    return {**result, "seconds": seconds, **parse_peak(nb.cells[-1])}


def read_train_log(path: Path, notebook: str) -> list[dict]:
    """The JSON lines ``train()`` wrote to ``path``, each tagged with ``notebook``."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [{"notebook": notebook, **json.loads(line)} for line in lines if line.strip()]


def heaviest_runs(runs: list[dict], peak_flops: float, top: int = TOP_RUNS) -> list[dict]:
    """Every run of :data:`LONG_RUN_S` seconds or more (at least the ``top`` longest), longest
    first, with samples/s, FLOP/s, their share of the peak, and where the log has the run's own
    ceiling (tools/train_log.py) the share of it and the ceiling's share of the peak."""
    by_time = sorted(runs, key=lambda r: r["seconds"], reverse=True)
    rows = []
    for rank, run in enumerate(by_time):
        if rank >= top and run["seconds"] < LONG_RUN_S:
            break
        flops, ceiling = run.get("flops_per_step"), run.get("ceiling_flops_per_s")
        achieved = None if flops is None else flops * run["steps"] / run["seconds"]
        rows.append(
            {
                **run,
                "samples_per_s": run["samples"] / run["seconds"],
                "flops_per_s": achieved,
                "peak_ratio": None if achieved is None else achieved / peak_flops,
                "ceiling_ratio": None if None in (achieved, ceiling) else achieved / ceiling,
                "ceiling_peak_ratio": None if ceiling is None else ceiling / peak_flops,
            }
        )
    return rows


# ---------------------------------------------------------------------------- make targets
def timed_make(*args: str, env: dict | None = None) -> dict:
    """Run ``make ARGS`` in the repository; its wall time and exit status."""
    start = time.perf_counter()
    status = subprocess.run(["make", *args], cwd=ROOT, env=env).returncode
    return {"seconds": time.perf_counter() - start, "returncode": status}


def nbval(kernel: str, notebooks: list[str], out: Path) -> dict:
    """``make nbval-cpu|gpu`` on ``notebooks``; the plugin's per-notebook times are kept."""
    env = dict(os.environ)
    env["MMBOOK_NBVAL_REPORT_DIR"] = str(out)
    env["MMBOOK_BUDGET_CLOCK"] = "wall"  # this run is the reference the budgets are judged by
    times = out / f"nbval-times-{kernel}.json"
    times.unlink(missing_ok=True)
    result = timed_make(NBVAL_TARGET[kernel], "NOTEBOOKS=" + " ".join(notebooks), env=env)
    if times.exists():
        plugin = json.loads(times.read_text())
        result.update(total_s=plugin["total"], seconds_per_notebook=plugin["seconds"])
        result["fingerprints"] = plugin["fingerprints"]  # which notebooks these seconds are of
        result["over_budget"] = plugin["over"]
    return result


def book_build() -> dict:
    """``make book`` after removing the build, then once more with nothing changed."""
    env = dict(os.environ)
    for stale in ("html", ".doctrees", "jupyter_execute"):
        shutil.rmtree(ROOT / "_build" / stale, ignore_errors=True)
    scratch = timed_make("book", env=env)
    rebuild = timed_make("book", env=env)
    return {
        "scratch_s": scratch["seconds"],
        "rebuild_s": rebuild["seconds"],
        "returncode": scratch["returncode"] or rebuild["returncode"],
    }


# ---------------------------------------------------------------------------- the report
def targets(kernel: dict) -> list[tuple[str, str, bool]]:
    """The speed targets of the book on one kernel: ``(target, what was measured, met)``.

    The whole book within :data:`BOOK_BUDGET_S` and every notebook within
    :data:`NOTEBOOK_LIMIT_S` (a notebook that failed counts as missed). The training runs'
    efficiency is reported (:func:`heaviest_runs`), not set a target: the old one, the heaviest
    run at 30% of the matmul peak, is retired, since how near a run can come to the peak is set
    by its model's shapes; each long run is measured against its own ceiling instead.
    """
    timed = [nb for nb in kernel["notebooks"] if "error" not in nb]
    failed = len(kernel["notebooks"]) - len(timed)
    slowest = max(timed, key=lambda nb: nb["seconds"], default=None)
    measured = "-" if slowest is None else f"{slowest['path']}: {seconds(slowest['seconds'])} s"
    if failed:
        measured += f" ({failed} failed)"
    each_met = slowest is not None and not failed and slowest["seconds"] <= NOTEBOOK_LIMIT_S
    return [
        (
            f"whole book in {BOOK_BUDGET_S:.0f} s or less",
            f"{seconds(kernel['total_s'])} s",
            kernel["total_s"] <= BOOK_BUDGET_S,
        ),
        (f"each notebook in {NOTEBOOK_LIMIT_S:.0f} s or less", f"slowest {measured}", each_met),
    ]


def gflops(flops: float | None) -> str:
    """FLOPs (or FLOP/s) in GFLOP: three significant figures, whole numbers from 1,000 on
    ('-' when unknown)."""
    if flops is None:
        return "-"
    value = flops / 1e9
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * ratio:.2g}%"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_table(report: dict) -> str:
    """The report as plain text for the terminal."""
    m = report["machine"]
    lines = [
        f"mmbook bench, {m['date']}: Python {m['python']}, torch {m['torch']}, {m['platform']}",
        f"CPU {m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch threads); "
        f"GPU {m['gpu'] or 'none'}",
    ]
    for kernel, k in report["kernels"].items():
        lines.append("")
        if "skipped" in k:
            lines.append(f"{kernel}: skipped ({k['skipped']})")
            continue
        lines.append(f"{kernel} on {k['device']}")
        lines.append(f"  {'notebook':40s} {'time s':>8s} {'budget s':>9s} {'peak MB':>9s}")
        for nb in k["notebooks"]:
            flag = ""
            if "error" in nb:
                flag = "  FAILED: " + nb["error"]
            elif nb["budget_s"] is not None and nb["seconds"] > nb["budget_s"]:
                flag = "  OVER BUDGET"
            budget = "-" if nb["budget_s"] is None else f"{nb['budget_s']:.0f}"
            peak = "-" if nb.get("peak_rss_mb") is None else f"{nb['peak_rss_mb']:.0f}"
            lines.append(
                f"  {nb['path']:40s} {seconds(nb.get('seconds')):>8s} {budget:>9s} {peak:>9s}{flag}"
            )
        lines.append(f"  {'total':40s} {seconds(k['total_s']):>8s} {BOOK_BUDGET_S:>9.0f}")
        if "nbval" in k:
            v = k["nbval"]
            state = "passed" if v["returncode"] == 0 else f"FAILED (exit {v['returncode']})"
            lines.append(
                f"  nbval: {seconds(v['seconds'])} s for make, "
                f"{seconds(v.get('total_s'))} s in notebooks, {state}"
            )
        peak = k["matmul_peak"]
        lines.append(
            f"  fp32 matmul peak ({peak['size']}x{peak['size']}): {gflops(peak['flops'])} GFLOP/s"
        )
        lines.append(
            f"  {len(k['training_runs'])} training runs; the longest "
            "(steps, samples/s, GFLOP/s, share of own ceiling, ceiling's share of peak):"
        )
        for run in k["heaviest_training"]:
            lines.append(
                f"    {run['notebook']} '{run['desc']}': {run['steps']} steps in "
                f"{seconds(run['seconds'])} s, {run['samples_per_s']:.0f} samples/s, "
                f"{gflops(run['flops_per_s'])} GFLOP/s, {percent(run.get('ceiling_ratio'))} of "
                f"its ceiling, ceiling {percent(run.get('ceiling_peak_ratio'))} of peak"
            )
        if kernel == "mmbook-cpu":  # the targets are set for the 2-core CPU machines
            lines.append("  targets:")
            for target, measured, met in targets(k):
                lines.append(f"    {'met    ' if met else 'NOT MET'}  {target}: {measured}")
    book = report["book"]
    lines.append("")
    if "skipped" in book:
        lines.append(f"make book: skipped ({book['skipped']})")
    else:
        state = "" if book["returncode"] == 0 else f"  FAILED (exit {book['returncode']})"
        lines.append(
            f"make book: {seconds(book['scratch_s'])} s from scratch, "
            f"{seconds(book['rebuild_s'])} s with nothing changed{state}"
        )
    return "\n".join(lines)


def bench_kernel(kernel: str, notebooks: list[Path], out: Path, skip: set[str]) -> dict:
    device = KERNEL_DEVICE[kernel]
    rows, runs = [], []
    for path in notebooks:
        log = out / f"train-{kernel}-{path.stem}.jsonl"
        rows.append(run_notebook(path, kernel, log))
        logged = read_train_log(log, rows[-1]["path"])
        runs += logged
        if "seconds" in rows[-1]:  # the log's own work (FLOP counts, ceilings) is not the book's
            overhead = sum(run.get("hook_s", 0.0) for run in logged)
            rows[-1].update(wall_s=rows[-1]["seconds"], bench_overhead_s=overhead)
            rows[-1]["seconds"] -= overhead
        print(f"{kernel} {rows[-1]['path']}: {seconds(rows[-1].get('seconds'))} s", flush=True)
    peak = matmul_peak(device)
    result = {
        "device": device,
        "notebooks": rows,
        "total_s": sum(r.get("seconds", 0.0) for r in rows),
        "matmul_peak": peak,
        "training_runs": runs,
        "heaviest_training": heaviest_runs(runs, peak["flops"]),
    }
    if "nbval" not in skip:
        names = [p.relative_to(ROOT).as_posix() for p in notebooks]
        result["nbval"] = nbval(kernel, names, out)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: chapters/*.ipynb")
    parser.add_argument("--skip", action="append", default=[], choices=["book", "nbval", "gpu"])
    parser.add_argument("--out", type=Path, default=OUT / "report.json")
    args = parser.parse_args(argv)
    import torch

    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "chapters").glob("*.ipynb"))
    skip = set(args.skip)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    every = sorted((ROOT / "chapters").glob("*.ipynb"))
    report = {
        "schema": 1,
        "machine": machine(),
        "complete": notebooks == every and not skip - {"gpu"},
        "skipped": sorted(skip),
        "kernels": {},
    }
    for kernel in KERNEL_DEVICE:
        if kernel == "mmbook-gpu" and not torch.cuda.is_available():
            report["kernels"][kernel] = {"skipped": "no CUDA device"}
        elif kernel == "mmbook-gpu" and "gpu" in skip:
            report["kernels"][kernel] = {"skipped": "--skip gpu"}
        else:
            report["kernels"][kernel] = bench_kernel(kernel, notebooks, args.out.parent, skip)
    report["book"] = {"skipped": "--skip book"} if "book" in skip else book_build()
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(format_table(report))
    print(f"\nwrote {args.out}")
    failed = [nb for k in report["kernels"].values() for nb in k.get("notebooks", [])]
    failed = [nb for nb in failed if "error" in nb]
    return 1 if failed or report["book"].get("returncode") else 0


if __name__ == "__main__":
    sys.exit(main())

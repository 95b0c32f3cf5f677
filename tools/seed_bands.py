"""Measure seed bands: run notebooks under several seeds and store each headline's range.

``make bands NB=chapters/02_core_concepts.ipynb SEEDS="0 1 2 3 4"`` runs this. Each notebook is
executed once per seed (a copy; the stored notebook is not touched) with ``MMBOOK_SEED`` set,
which the chapter's training reads through :func:`mmlib.book_seed`. Every value it shows with
:func:`mmlib.book.results.report` is read back from the outputs, and
``mmlib/book/seed_bands.json`` gets,
per name, the values, the seeds, the command, the date and the machine. Names of the notebooks
run are replaced; other entries are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import fcntl
import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mmlib.book.results import BANDS_FILE


def cpu_name() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (the platform's name elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def reported_values(nb) -> dict[str, tuple[float, str]]:
    """``{name: (value, fmt)}`` of every :func:`mmlib.book.results.report` in the outputs, and
    of every :func:`mmlib.book.results.banded` number that a table or line showed."""
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("mmbook", {})
            for entry in [meta["report"]] if meta.get("report") else meta.get("reports", []):
                found[entry["name"]] = (entry["value"], entry["fmt"])
    return found


def run(path: Path, seed: int, kernel: str) -> dict[str, tuple[float, str]]:
    nb = nbformat.read(path, as_version=4)
    os.environ["MMBOOK_SEED"] = str(seed)
    try:
        client = NotebookClient(
            copy.deepcopy(nb),
            kernel_name=kernel,
            timeout=900,
            resources={"metadata": {"path": str(path.parent)}},
        )
        executed = client.execute()
    finally:
        os.environ.pop("MMBOOK_SEED", None)
    return reported_values(executed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--seeds", default="0 1 2 3 4")
    parser.add_argument("--kernel", default="mmbook-cpu")
    parser.add_argument("--out", type=Path, default=BANDS_FILE)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split()]
    if len(seeds) < 5:
        parser.error(f"a seed band needs at least 5 seeds, got {seeds}")
    for path in args.notebooks:
        values: dict[str, list[float]] = {}
        formats: dict[str, str] = {}
        start = time.perf_counter()
        for seed in seeds:
            for name, (value, fmt) in run(path, seed, args.kernel).items():
                values.setdefault(name, []).append(value)
                formats[name] = fmt
            print(f"{path} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
        for name, vals in values.items():
            if len(vals) != len(seeds):
                raise SystemExit(f"{name} was reported by {len(vals)} of {len(seeds)} runs")
        with _locked(args.out):  # several notebooks may be measured at once
            data = json.loads(args.out.read_text()) if args.out.exists() else {"bands": {}}
            data["bands"] = {k: v for k, v in data["bands"].items() if v["notebook"] != path.name}
            for name, vals in sorted(values.items()):
                data["bands"][name] = _entry(path, vals, seeds, formats[name], args.seeds)
                print(f"  {name}: {min(vals):.4g} .. {max(vals):.4g} over {len(vals)} seeds")
            data["bands"] = dict(sorted(data["bands"].items()))
            args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return 0


def _entry(path: Path, vals: list[float], seeds: list[int], fmt: str, seeds_arg: str) -> dict:
    return {
        "notebook": path.name,
        "values": [round(v, 6) for v in vals],
        "seeds": seeds,
        "fmt": fmt,
        "command": f'make bands NB={path.as_posix()} SEEDS="{seeds_arg}"',
        "date": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {cpu_name()}",
    }


@contextlib.contextmanager
def _locked(path: Path):
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


if __name__ == "__main__":
    sys.exit(main())

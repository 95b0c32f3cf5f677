"""`make compare`: the notebooks of two commits timed side by side, interleaved, in one run.

    python -m tools.compare_speed [--baseline REV] [--rounds N] [--out FILE.json] [NOTEBOOK ...]

These machines drift by 40-80 % within a day, so absolute seconds from two runs at different
times say little about a change. This tool checks the baseline commit out into a git worktree
(``_build/compare/<rev>``), then for every notebook runs the baseline's copy and the working
tree's copy one right after the other on the ``mmbook-cpu`` kernel (alternating which goes
first, round after round), so both see the same machine. Each run is timed as nbval counts it,
from the kernel's start to its last cell. The kernel imports each side's own ``mmlib`` (the
side's folder goes first on ``PYTHONPATH``); the environment (``.venv``) is shared.

It reports, per notebook and for the whole book, the median seconds of each side and the ratio
new / baseline; the ratio is the figure to quote. Notebooks are executed in memory and never
written back. With ``--merge`` (``make calibrate``) the rows of an earlier report against the
same baseline commit are kept for the notebooks not timed this time; each row says when and
from which commit it was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from tools.bench import execute_timed, machine
from tools.budgets import fingerprint

ROOT = Path(__file__).resolve().parents[1]
CHECK_CELL = "import mmlib as _m; print(_m.__file__)"


def worktree(rev: str) -> Path:
    """A checkout of ``rev`` under ``_build/compare/`` (made once, reused while ``rev`` holds)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    path = ROOT / "_build" / "compare" / sha[:12]
    if not (path / "mmlib").is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--force", str(path), sha],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
    return path


def head_commit() -> str:
    """The working tree's commit, ``+`` when files differ from it (what the "new" side ran)."""
    git = ["git", "-C", str(ROOT)]
    sha = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "mmlib", "chapters"]).returncode
    return sha.stdout.strip() + ("+" if dirty else "")


def time_notebook(path: Path, package_root: Path, kernel: str = "mmbook-cpu") -> float:
    """Seconds from the kernel's start to the last cell of ``path``, importing ``package_root``'s
    mmlib. Fails if the kernel imported any other mmlib."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    last = len(nb.cells) - 1
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root), saved]))
    try:
        seconds = execute_timed(nb, path, kernel, last)
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    imported = "".join(o.get("text", "") for o in nb.cells[-1].outputs).strip()
    if not imported.startswith(str(package_root)):
        raise RuntimeError(f"{path}: the kernel imported {imported}, not {package_root}'s mmlib")
    return seconds


def compare(notebooks: list[str], baseline: Path, rounds: int, log=print, new: Path = ROOT) -> dict:
    """Median seconds per notebook of both sides, each pair measured back to back."""
    sides = {"baseline": baseline, "new": new}
    times: dict[str, dict[str, list[float]]] = {nb: {"baseline": [], "new": []} for nb in notebooks}
    prints = {  # which code each side's time is of (tools.budgets.fingerprint), taken at the start
        nb: {
            side: fingerprint(root / nb) if (root / nb).exists() else None
            for side, root in sides.items()
        }
        for nb in notebooks
    }
    for r in range(rounds):
        for k, nb in enumerate(notebooks):
            order = ["baseline", "new"] if (r + k) % 2 == 0 else ["new", "baseline"]
            for side in order:
                root = sides[side]
                if not (root / nb).exists():
                    continue  # a notebook only one side has
                times[nb][side].append(time_notebook(root / nb, root))
            log(f"round {r + 1}/{rounds} {nb}: " + ", ".join(
                f"{side} {times[nb][side][-1]:.1f} s" for side in order if times[nb][side]
            ))  # fmt: skip
    rows = {}
    for nb, by_side in times.items():
        medians = {s: statistics.median(v) if v else None for s, v in by_side.items()}
        both = None not in medians.values()
        rows[nb] = {**medians, "ratio": medians["new"] / medians["baseline"] if both else None}
        rows[nb]["fingerprints"] = prints[nb]
        rows[nb]["runs"] = by_side  # seconds of each round, in round order
    return {"rounds": rounds, "notebooks": rows, "book": book_totals(rows)}


def book_totals(rows: dict) -> dict:
    """Each side's seconds summed over the notebooks it has, and the ratio new / baseline over
    the notebooks both sides have."""
    book = {s: sum(r[s] for r in rows.values() if r[s] is not None) for s in ("baseline", "new")}
    common = [r for r in rows.values() if r["ratio"] is not None]
    book["ratio"] = (
        sum(r["new"] for r in common) / sum(r["baseline"] for r in common) if common else None
    )
    return book


def merge(earlier: dict | None, report: dict) -> dict:
    """``report`` with the rows of ``earlier`` for the notebooks it did not time, when both timed
    against the same baseline commit (otherwise ``report`` alone). Each row keeps the
    ``measured`` date and commit of its own run; the whole-book sums are over the merged rows."""
    stamp = {"date": report["machine"]["date"], "new_commit": report["new_commit"]}
    rows = {nb: {**row, "measured": stamp} for nb, row in report["notebooks"].items()}
    if earlier and earlier.get("baseline_commit") == report["baseline_commit"]:
        old_stamp = {"date": earlier["machine"]["date"], "new_commit": earlier["new_commit"]}
        kept = {nb: {"measured": old_stamp, **row} for nb, row in earlier["notebooks"].items()}
        rows = {**{nb: r for nb, r in kept.items() if nb not in rows}, **rows}
    rows = dict(sorted(rows.items()))
    return {**report, "notebooks": rows, "book": book_totals(rows)}


def format_table(report: dict, baseline: str) -> str:
    lines = [
        f"| notebook | baseline {baseline} (s) | new (s) | new / baseline |",
        "|---|---:|---:|---:|",
    ]

    def cell(value, fmt):
        return "—" if value is None else format(value, fmt)

    for nb, row in report["notebooks"].items():
        lines.append(
            f"| {Path(nb).stem} | {cell(row['baseline'], '.1f')} | {cell(row['new'], '.1f')} "
            f"| {cell(row['ratio'], '.2f')} |"
        )
    book = report["book"]
    lines.append(
        f"| **whole book** | **{book['baseline']:.1f}** | **{book['new']:.1f}** "
        f"| **{cell(book['ratio'], '.2f')}** |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each side per notebook")
    parser.add_argument("--out", default="_build/bench/compare.json")
    parser.add_argument(
        "--merge", action="store_true", help="keep --out's rows of notebooks not timed now"
    )
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    notebooks = args.notebooks or sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb")
    )
    baseline = worktree(args.baseline)
    new_commit = head_commit()  # what the run starts from, whatever changes while it runs
    report = compare(notebooks, baseline, args.rounds, log=lambda s: print(s, flush=True))
    report.update(
        baseline=args.baseline,
        baseline_commit=baseline.name,  # worktree() names the folder by the commit
        new_commit=new_commit,
        baseline_path=str(baseline),
        machine=machine(),
    )
    out = ROOT / args.out
    if args.merge:
        report = merge(json.loads(out.read_text()) if out.exists() else None, report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(format_table(report, args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())

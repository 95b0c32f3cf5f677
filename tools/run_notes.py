"""Run a page's run notes under several seeds and store what they measured.

A *run notes* box is a collapsed admonition in a chapter whose fenced ``python`` block runs in
the page's kernel after the page's cells: a measurement the page's time budget cannot hold
(a longer training run, an ablation). Its first line names it, ``# run notes: <name>``, and it
leaves its results in a dict ``results`` (name -> number). The page reads the stored results
with :func:`mmlib.book.results.earlier_run` in a cell *below* the box.

``make run-notes NB=chapters/06_1_dialogue.ipynb NOTE=ch6_1.without_absent`` runs this: for each
seed the notebook's cells above the box are executed (a copy; the stored notebook is not
touched) with ``MMBOOK_SEED`` set, then the block, exactly as the box shows it.
``mmlib/book/earlier_runs.json`` gets the values per seed, with the commit, the command, the
date, the machine and the block's SHA-256, and the page glues them with
:func:`mmlib.book.results.earlier_run`, so its prose types no number of a run it did not make.
``tests/test_run_notes.py`` fails when a box's code no longer matches what was run.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mmlib.book.results import EARLIER_RUNS_FILE
from tools.seed_bands import cpu_name

_BLOCK = re.compile(r"```python\n(# run notes: (\S+)\n.*?)```", re.DOTALL)
_TITLE = re.compile(r"\{admonition\} Run notes: (.+)")
_MARK = "EXECUTE-ABOVE-RESULT "


def run_notes_blocks(nb) -> dict[str, tuple[str, str, int]]:
    """``{name: (title, code, cell)}`` of every run-notes block in the notebook's markdown cells:
    the title is the box's, after "Run notes: ", and ``cell`` the index of its markdown cell."""
    blocks = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for match in _BLOCK.finditer(cell.source):
            code, name = match.groups()
            titles = _TITLE.findall(cell.source[: match.start()])
            if not titles:
                raise ValueError(f"run-notes block {name!r} is not in a 'Run notes: ...' box")
            if name in blocks:
                raise ValueError(f"two run-notes blocks are named {name!r}")
            blocks[name] = (titles[-1].strip(), code, index)
    return blocks


def code_sha(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def execute_above(
    nb, path: Path, cell: int, codes: list[str], seed: int, kernel: str, read: str
) -> object:
    """Execute the cells of notebook ``nb`` (read from ``path``) above cell ``cell``, then the
    ``codes`` as cells of their own, under ``seed`` (``MMBOOK_SEED``), in the page's folder; the
    value of the expression ``read`` in the kernel afterwards, through JSON (``nb`` is not
    touched)."""
    nb = copy.deepcopy(nb)
    show = f"import json\nprint({_MARK!r} + json.dumps({read}))"
    nb.cells = nb.cells[:cell] + [nbformat.v4.new_code_cell(code) for code in [*codes, show]]
    os.environ["MMBOOK_SEED"] = str(seed)
    try:
        client = NotebookClient(
            nb, kernel_name=kernel, timeout=900, resources={"metadata": {"path": str(path.parent)}}
        )
        executed = client.execute()
    finally:
        os.environ.pop("MMBOOK_SEED", None)
    for out in executed.cells[-1].outputs:
        for line in out.get("text", "").splitlines():
            if line.startswith(_MARK):
                return json.loads(line[len(_MARK) :])
    raise SystemExit(f"{path} seed {seed}: {read} was not printed")


def run(nb, path: Path, code: str, cell: int, seed: int, kernel: str) -> dict[str, float]:
    """Execute the cells of notebook ``nb`` (read from ``path``) above cell ``cell``, then
    ``code``, under ``seed``; the block's ``results``."""
    results = execute_above(nb, path, cell, [code], seed, kernel, read="results")
    return {k: float(v) for k, v in results.items()}


def commit() -> str:
    """The working tree's commit, ``+`` when it has uncommitted changes."""
    return subprocess.run(
        ["git", "describe", "--always", "--dirty=+"], capture_output=True, text=True, check=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("name", help="the block's name, from its '# run notes: <name>' line")
    parser.add_argument("--seeds", default="0 1 2 3 4")
    parser.add_argument("--kernel", default="mmbook-cpu")
    parser.add_argument("--out", type=Path, default=EARLIER_RUNS_FILE)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split()]
    if 0 not in seeds or len(seeds) < 5:
        parser.error(f"need at least 5 seeds, seed 0 among them (the page's), got {seeds}")
    nb = nbformat.read(args.notebook, as_version=4)  # once: the file may change meanwhile
    blocks = run_notes_blocks(nb)
    if args.name not in blocks:
        parser.error(f"{args.notebook} has no run-notes block {args.name!r}: {sorted(blocks)}")
    title, code, cell = blocks[args.name]
    values: dict[str, list[float]] = {}
    start = time.perf_counter()
    for seed in seeds:
        for key, value in run(nb, args.notebook, code, cell, seed, args.kernel).items():
            values.setdefault(key, []).append(round(value, 6))
        print(
            f"{args.notebook} {args.name} seed {seed}: {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data[args.name] = {
        "what": f"run notes of {args.notebook.name}: {title}",
        "commit": commit(),
        "reproduce": f"make run-notes NB={args.notebook.as_posix()} NOTE={args.name}"
        f' SEEDS="{args.seeds}"',
        "seeds": seeds,
        "date": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {cpu_name()}",
        "code_sha256": code_sha(code),
        "values": dict(sorted(values.items())),
    }
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    for key, vals in sorted(values.items()):
        print(f"  {key}: {min(vals):.4g} .. {max(vals):.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

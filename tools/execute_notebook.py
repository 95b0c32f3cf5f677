"""Execute notebooks in place, top to bottom, storing what the prose's ``{eval}`` roles show.

``make notebooks`` runs this. Code cells run as with ``jupyter nbconvert --execute``; each
markdown cell's ``{eval}`expression``` roles are evaluated in the kernel at that point of the
page (after the code above it, as JupyterLab does on Run All) and stored in the cell's
``metadata.user_expressions`` in jupyterlab-myst's format, so that the page reads the same in
JupyterLab and in the built book (``book/_ext/stored_eval.py``). An expression that fails stops
the run: a page must not print an error where a number should be.

    python -m tools.execute_notebook chapters/02_core_concepts.ipynb [--kernel mmbook-cpu]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# {eval}`expr` (one or two backticks, as MyST allows)
EVAL_ROLE = re.compile(r"\{eval\}(`+)(.+?)\1")


def eval_expressions(markdown: str) -> list[str]:
    """The expressions of the ``{eval}`` roles in a markdown cell, in order, without repeats."""
    return list(dict.fromkeys(m.group(2).strip() for m in EVAL_ROLE.finditer(markdown)))


class ProseError(RuntimeError):
    """An ``{eval}`` expression of the prose failed in the kernel."""


class ProseClient(NotebookClient):
    """A notebook client that also evaluates and stores the prose's ``{eval}`` expressions."""

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "markdown":
            return await super().async_execute_cell(
                cell, cell_index, execution_count=execution_count, store_history=store_history
            )
        expressions = eval_expressions(cell.source)
        cell.metadata.pop("user_expressions", None)
        if not expressions:
            return cell
        msg_id = self.kc.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions={str(k): e for k, e in enumerate(expressions)},
        )
        reply = await self.async_wait_for_reply(msg_id, cell)
        results = reply["content"].get("user_expressions", {})
        stored = []
        for k, expression in enumerate(expressions):
            result = results.get(str(k), results.get(k, {}))
            if result.get("status") != "ok":
                raise ProseError(
                    f"markdown cell {cell_index}: {{eval}}`{expression}` failed: "
                    f"{result.get('ename')}: {result.get('evalue')}"
                )
            stored.append(
                {
                    "expression": expression,
                    "result": {
                        "status": "ok",
                        "data": result.get("data", {}),
                        "metadata": result.get("metadata", {}),
                    },
                }
            )
        cell.metadata["user_expressions"] = stored
        return cell


def execute(path: Path, kernel: str = "mmbook-cpu", timeout: int = 600) -> float:
    """Execute ``path`` in place; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = ProseClient(
        nb, kernel_name=kernel, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--kernel", default="mmbook-cpu")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: {execute(path, args.kernel):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

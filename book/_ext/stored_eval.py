"""Sphinx extension: MyST's ``{eval}`` role reads the values stored in the notebook.

The book is built from stored outputs (``execute_notebooks: off``), and MyST-NB evaluates
``{eval}`` roles only with a running kernel. ``make notebooks`` (``tools/execute_notebook.py``)
stores each markdown cell's values in ``metadata.user_expressions``, jupyterlab-myst's format,
which JupyterLab shows too. This extension gives MyST-NB those stored values, so the website,
the PDF and JupyterLab print the same numbers. An expression with no stored value is an error,
which ``-W`` turns into a failed build.
"""

from __future__ import annotations

from myst_nb.core.execute.base import NotebookClientBase
from nbformat import from_dict


def stored_value(self: NotebookClientBase, name: str) -> list:
    """The stored outputs of the ``{eval}`` expression ``name`` in this notebook."""
    values = {}
    for cell in self.notebook.get("cells", []):
        for entry in cell.get("metadata", {}).get("user_expressions", []):
            result = entry.get("result", {})
            if result.get("status") == "ok":
                values[entry["expression"]] = result
    name = name.strip()
    if name not in values:
        raise LookupError(f"no stored value for {{eval}}`{name}`: run `make notebooks NB=...`")
    result = values[name]
    output = {"output_type": "display_data", "data": result["data"], "metadata": {}}
    return [from_dict(output)]


def setup(app):
    NotebookClientBase.eval_variable = stored_value
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Sphinx extension for book/api.md: a module constant documented with ``autodata`` shows its
own doc comment (``#:``) or nothing, never the docstring of its type ("Built-in immutable
sequence..." for a tuple)."""

from __future__ import annotations

import inspect


def drop_type_docstring(app, what, name, obj, options, lines) -> None:
    """``autodoc-process-docstring`` handler: clear ``lines`` if they are ``type(obj).__doc__``."""
    if what not in ("data", "attribute"):
        return
    type_doc = type(obj).__doc__
    if type_doc and "\n".join(lines).strip() == inspect.cleandoc(type_doc).strip():
        lines.clear()


def setup(app):
    app.connect("autodoc-process-docstring", drop_type_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Show mmlib's own source in a notebook, so the book never pastes a second copy."""

from __future__ import annotations

import ast
import inspect
import types

__all__ = ["show_source"]


def source_of(obj: object) -> str:
    """The source text of a module, class or function; a module's docstring is left out."""
    if not isinstance(obj, (types.ModuleType, type, types.FunctionType, types.MethodType)):
        raise TypeError(f"obj must be a module, class or function, got {type(obj).__name__}")
    text = inspect.getsource(obj)
    if isinstance(obj, types.ModuleType):
        body = ast.parse(text).body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            lines = text.splitlines(keepends=True)
            text = "".join(lines[body[0].end_lineno :]).lstrip("\n")
    return text


def show_source(obj: object):
    """Display the source of ``obj`` (module, class or function) with syntax highlighting."""
    from IPython.display import Code

    return Code(source_of(obj), language="python")

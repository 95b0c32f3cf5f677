"""mmlib's folders are the book's layers: each module imports only from its own layer or those
below it, holds one idea in about 300 lines, and no module outside tools/ reaches into tests/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MMLIB = ROOT / "mmlib"
#: The layers, lowest first; a module may import from its own layer and any earlier one.
LAYERS = ("foundations", "maths", "data", "encoders", "models", "evaluation", "training", "book")
MAX_LINES = 320
MODULES = sorted(MMLIB.rglob("*.py"))


def layer_of(module: str) -> str:
    """``mmlib.data.scenes`` -> "data"; top-level modules (``mmlib.validate``) are foundations."""
    parts = module.split(".")
    if len(parts) > 2 or (MMLIB / parts[-1]).is_dir():
        return parts[1]
    return "foundations"


def imported_mmlib_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmlib"):
            if node.module == "mmlib":  # from mmlib import data
                names.update(f"mmlib.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("mmlib"))
    return names


def name_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_every_folder_is_a_layer():
    folders = {p.name for p in MMLIB.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders == set(LAYERS) - {"foundations"}


@pytest.mark.parametrize("path", MODULES, ids=[name_of(p) for p in MODULES])
def test_imports_go_down_the_layers(path):
    mine = LAYERS.index(layer_of(name_of(path)))
    upward = [
        module
        for module in imported_mmlib_modules(path)
        if module != "mmlib" and LAYERS.index(layer_of(module)) > mine
    ]
    assert not upward, f"{name_of(path)} imports from a higher layer: {sorted(upward)}"


@pytest.mark.parametrize("path", MODULES, ids=[name_of(p) for p in MODULES])
def test_modules_are_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{name_of(path)} has {lines} lines (at most {MAX_LINES})"


def test_no_model_imports_the_training_loop():
    for path in (MMLIB / "models").glob("*.py"):
        assert not any(m.startswith("mmlib.training") for m in imported_mmlib_modules(path)), path


def test_the_makefile_runs_no_module_from_tests():
    makefile = (ROOT / "Makefile").read_text()
    assert "-m tests." not in makefile and "tests/toc.py" not in makefile

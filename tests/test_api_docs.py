"""The API reference (book/api.md) covers every mmlib module and, once built, every public name.

Modules are discovered from the mmlib/ folder, so a new module fails this test until it gets an
``automodule`` entry. The built page is checked only after `make book` has made it.
"""

from __future__ import annotations

import importlib
import inspect
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_PAGE = ROOT / "book" / "api.md"
BUILT_PAGE = ROOT / "_build" / "html" / "book" / "api.html"
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT / "mmlib").rglob("*.py")
    if not p.stem.startswith("_") or (p.stem == "__init__" and p.parent.name == "encoders")
)


def documented_modules() -> list[str]:
    return re.findall(r"^\.\. automodule::\s+(\S+)\s*$", API_PAGE.read_text(), flags=re.M)


def public_names(module_name: str) -> list[str]:
    """``__all__``, or, for a module without one, the functions and classes it defines."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module_name
    ]


class _Ids(HTMLParser):
    """Collects the ``id`` attributes of a page: autodoc gives each object ``id="module.name"``."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for key, value in attrs if key == "id" and value)


def test_modules_are_found():
    assert "mmlib.training.loop" in MODULES and "mmlib.validate" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_an_automodule_entry_with_members(module):
    text = API_PAGE.read_text()
    assert module in documented_modules(), f"book/api.md has no automodule entry for {module}"
    entry = re.search(rf"^\.\. automodule::\s+{re.escape(module)}\s*\n((?:\s+:.*\n)*)", text, re.M)
    assert ":members:" in entry.group(1), f"the automodule entry for {module} lacks :members:"


def test_no_entry_for_a_module_that_does_not_exist():
    assert set(documented_modules()) <= {"mmlib", *MODULES}


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_is_on_the_built_page(module):
    if not BUILT_PAGE.exists():
        pytest.skip("_build/html/book/api.html is not built: run `make book` first")
    if BUILT_PAGE.stat().st_mtime < API_PAGE.stat().st_mtime:
        pytest.skip("_build/html/book/api.html is older than book/api.md: run `make book` again")
    parser = _Ids()
    parser.feed(BUILT_PAGE.read_text())
    missing = [name for name in public_names(module) if f"{module}.{name}" not in parser.ids]
    assert not missing, f"{module}: public names missing from the built API page: {missing}"

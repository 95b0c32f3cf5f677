"""mmlib: the code that the book "Multimodal Models, Hands-On" teaches.

Small, flat modules, one idea each. Chapters import from here and never paste a copy.
The four helpers below are loaded on first use, so that ``import mmlib.book.plotting`` (a chapter
that only draws) does not pay for importing torch.
"""

from __future__ import annotations

__all__ = ["book_seed", "device_report", "get_device", "seed_everything"]
__version__ = "0.1.0"

_HOME = {
    "book_seed": "seed",
    "seed_everything": "seed",
    "device_report": "device",
    "get_device": "device",
}


def __getattr__(name: str):
    if name in _HOME:
        from importlib import import_module

        value = getattr(import_module(f"mmlib.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])

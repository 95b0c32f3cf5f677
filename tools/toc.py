"""The pages of _toc.yml in reading order: one walker for every test that needs the list."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_pages(toc_text: str | None = None) -> list[str]:
    """Every page of ``_toc.yml`` (or of ``toc_text``), root first, as written: ``chapters/x``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text() if toc_text is None else toc_text)
    pages = [toc["root"]] if "root" in toc else []

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return pages

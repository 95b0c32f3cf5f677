"""Site tests run against the built website in _build/html (`make book` builds it)."""

import os
from pathlib import Path

import pytest

from tools.site_tools import CHROMIUM_ARGS, find_chromium

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def html_dir() -> Path:
    if not (HTML / "index.html").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("_build/html is missing: CI must run `make book` before the site tests")
        pytest.skip("_build/html is missing: run `make book` first")
    return HTML


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """pytest-playwright launches Debian's Chromium (Playwright's own download is unavailable)."""
    return {"executable_path": find_chromium(), "args": CHROMIUM_ARGS}

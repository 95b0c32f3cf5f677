"""Helpers shared by the browser tests and `make pdf`: toc pages, a local server, Chromium.

Nothing here needs pytest, so `python -m tools.print_pdf` can use it too.
"""

import functools
import http.server
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.toc import toc_pages

__all__ = [
    "CHROMIUM_ARGS",
    "CHROMIUM_HINT",
    "NOT_LOCAL",
    "ROOT",
    "find_chromium",
    "is_local",
    "serve",
    "toc_docnames",
    "wait_until_rendered",
]

ROOT = Path(__file__).resolve().parents[1]

# Debian's Chromium, headless, as root, with every background service that could phone home off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_HINT = (
    "Chromium not found: install it with `sudo apt-get install chromium` (Debian/Ubuntu), "
    "or set CHROMIUM=/path/to/chromium"
)


def find_chromium() -> str | None:
    """The Chromium executable: $CHROMIUM, else /usr/bin/chromium or chromium(-browser) on PATH."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def toc_docnames(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every page of `_toc.yml` in reading order (root, then chapters and their sections)."""
    return [str(Path(name).with_suffix("")) for name in toc_pages(toc.read_text(encoding="utf-8"))]


# Anything but loopback http(s), data:, blob: and about: leaves the machine.
NOT_LOCAL = re.compile(r"^(?!(data|blob|about):|https?://(127\.0\.0\.1|localhost|\[::1\])[:/])")


def is_local(url: str) -> bool:
    """True for URLs that never leave the machine: loopback http(s), data:, blob:, about:."""
    return NOT_LOCAL.match(url) is None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the stdlib's signature
        pass

    def end_headers(self):
        # LinkChecker waits between requests to a host unless the host answers with this header.
        self.send_header("LinkChecker", "local test server")
        super().end_headers()


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A browser that navigates away drops requests still in flight: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 at a free port; yields the base URL, ending in '/'."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def wait_until_rendered(page) -> None:
    """Wait until MathJax has typeset (if the page loads it), fonts are in, images decoded and
    Font Awesome has drawn its icons (its deferred script swaps each <i class="fa-..."> for an
    <svg>, which on a busy machine can come after the load event; at most 10 s, after which the
    page's checks report the icons left undrawn)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_load_state("load")
    try:
        page.wait_for_function("() => !document.querySelector('i[class*=\"fa-\"]')", timeout=10_000)
    except PlaywrightTimeout:
        pass
    page.evaluate(
        """async () => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                await MathJax.startup.promise;
            }
            await document.fonts.ready;
            await Promise.all([...document.images].map((img) => {
                img.loading = "eager";
                return img.decode().catch(() => null);
            }));
        }"""
    )

"""The live widgets in Chromium: the browser's answers are PyTorch's, offline and accessible.

`make widgets` (tools/web_export.py) trains chapter 6.3's search model with the page's own cells,
exports its text encoder to ONNX and writes ``reference.json``: PyTorch's token ids, embedding
and top 8 for the export's fixed queries. Here the built site, served on 127.0.0.1 with every
other host refused, runs the same queries through the page's search box (ONNX Runtime Web, in
WebAssembly) and must give the same token ids, embeddings within :data:`TOLERANCE` and the same
top 8. The times it took are written to ``_build/widget-times.json`` and printed.
"""

import json
import os

import pytest

from tools.site_tools import CHROMIUM_HINT, ROOT, find_chromium, serve

try:
    from axe_playwright_python.base import AXE_SCRIPT

    from tests.site.test_browser import Reader
except ImportError:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright / axe-playwright-python missing", allow_module_level=True)

if find_chromium() is None:  # as in test_browser.py: a failure under CI, else a skip
    if os.environ.get("CI") == "true":
        pytest.fail(CHROMIUM_HINT, pytrace=False)
    pytest.skip(CHROMIUM_HINT, allow_module_level=True)

SEARCH_PAGE = "chapters/06_3_search"
TOLERANCE = 1e-4  # the bound for a browser output against PyTorch's
FIRST_RESULT_MS = 1000  # the bound: first result within 1 s of the query
TIMES = ROOT / "_build" / "widget-times.json"
LOAD_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def site_url(html_dir):
    with serve(html_dir) as url:
        yield url


@pytest.fixture(scope="module")
def reference(html_dir):
    path = html_dir / "_static" / "widgets" / "search" / "reference.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: `make book` runs `make widgets` first", pytrace=False)
    return json.loads(path.read_text(encoding="utf-8"))["queries"]


def open_page(browser, site_url: str, init_script: str | None = None):
    """A new browser context on the built site and a :class:`Reader` tab on the search page (it
    records console errors, failed and non-local requests, and refuses the latter)."""
    context = browser.new_context(base_url=site_url, viewport={"width": 1280, "height": 900})
    if init_script:
        context.add_init_script(init_script)
    reader = Reader(context.new_page(), [])
    reader.open(SEARCH_PAGE)
    return context, reader


def trouble(reader) -> list[str]:
    """What the tab met that a reader should not: errors, failed and non-local requests."""
    return reader.errors + reader.failed + reader.remote


def wait_ready(page, query: str | None = None) -> dict:
    """Wait until the search widget has shown the results of ``query`` (or of its first one)."""
    state = "el => el.dataset.state === 'ready'"
    if query is not None:
        state = f"el => el.dataset.state === 'ready' && el.dataset.query === {json.dumps(query)}"
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('.mm-widget[data-widget=search]');"
        f" return el && ({state})(el); }}",
        timeout=LOAD_TIMEOUT_MS,
    )
    return page.evaluate(
        """() => {
            const el = document.querySelector('.mm-widget[data-widget=search]');
            return {
                ids: [...el.querySelectorAll('ol.mm-results li')].map((li) => +li.dataset.id),
                loadMs: +el.dataset.loadMs,
                queryMs: +el.dataset.queryMs,
                status: el.querySelector('.mm-status').textContent,
            };
        }"""
    )


@pytest.fixture(scope="module")
def search_tab(browser, site_url):
    context, reader = open_page(browser, site_url)
    reader.first = wait_ready(reader.page)
    yield reader
    context.close()


def test_search_matches_pytorch(search_tab, reference, html_dir):
    """For every fixed query: the browser's token ids are the Python tokenizer's, its embedding
    is PyTorch's within 1e-4, and the search box shows PyTorch's top 8, in order."""
    page = search_tab.page
    times, problems = [], []
    box = page.locator("#mm-search-query")
    for case in reference:
        query = case["query"]
        ids = page.evaluate("(q) => window.mmWidgets.search.tokenize(q)", query)
        vector = page.evaluate(
            "async (q) => Array.from(await window.mmWidgets.search.embed(q))", query
        )
        gap = max(abs(a - b) for a, b in zip(vector, case["vector"], strict=True))
        box.fill(query)  # an input event: the widget searches as the reader types
        shown = wait_ready(page, query.strip())
        times.append(shown["queryMs"])
        if ids != case["ids"]:
            problems.append(f"{query!r}: token ids {ids}, Python's {case['ids']}")
        if gap > TOLERANCE:
            problems.append(f"{query!r}: embedding differs from PyTorch's by {gap:.2e}")
        if shown["ids"] != case["top8"]:
            problems.append(f"{query!r}: top 8 {shown['ids']}, PyTorch's {case['top8']}")
    assert len(reference) >= 20
    assert not problems, problems
    assert not trouble(search_tab), trouble(search_tab)
    ordered = sorted(times)
    report = {
        "queries": len(times),
        "model load ms": search_tab.first["loadMs"],
        "first result ms (page's first query)": search_tab.first["queryMs"],
        "query ms, median": ordered[len(ordered) // 2],
        "query ms, slowest": ordered[-1],
        "assets MB": round(assets_bytes(html_dir) / 1e6, 2),
    }
    TIMES.parent.mkdir(parents=True, exist_ok=True)
    TIMES.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print("\nsearch widget:", json.dumps(report))
    assert search_tab.first["queryMs"] < FIRST_RESULT_MS and ordered[-1] < FIRST_RESULT_MS, report


def test_search_widget_loads_the_model_once(search_tab):
    """One ONNX model, one WebAssembly module and one ONNX Runtime script per page."""
    names = search_tab.page.evaluate(
        "() => performance.getEntriesByType('resource').map((r) => r.name)"
    )
    for ending in ("text_encoder.onnx", ".wasm", "ort.wasm.min.js"):
        assert sum(name.endswith(ending) for name in names) == 1, (ending, names)


def test_axe_finds_nothing_in_the_search_widget(browser, site_url):
    """axe-core, every impact (the page test fails only on serious and critical ones), on the
    widget with its results shown."""
    context, reader = open_page(browser, site_url)
    page = reader.page
    wait_ready(page)
    assert not trouble(reader), trouble(reader)  # before axe's own fetches
    page.evaluate(AXE_SCRIPT)
    found = page.evaluate(
        "async () => (await axe.run('.mm-widget')).violations"
        ".map((v) => `${v.id} (${v.impact}): ${v.nodes.length} nodes`)"
    )
    assert not found, found
    context.close()


def test_search_widget_works_from_the_keyboard(browser, site_url):
    """Tab reaches the box, typing and Enter search, and each result is described for a screen
    reader (its caption) with a live status line."""
    context, reader = open_page(browser, site_url)
    page = reader.page
    wait_ready(page)
    page.evaluate(  # a focusable element just before the widget: where a keyboard user comes from
        """() => {
            const before = document.createElement('button');
            before.id = 'mm-test-start';
            before.textContent = 'start';
            document.querySelector('.mm-widget[data-widget=search]').before(before);
            before.focus();
        }"""
    )
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "mm-search-query"
    page.keyboard.press("Control+A")
    page.keyboard.type("a large green square")
    page.keyboard.press("Enter")
    shown = wait_ready(page, "a large green square")
    assert len(shown["ids"]) == 8
    labels = page.locator(".mm-widget ol.mm-results canvas").evaluate_all(
        "(nodes) => nodes.map((n) => n.getAttribute('aria-label'))"
    )
    assert len(labels) == 8 and all(labels), labels
    assert page.locator(".mm-widget .mm-status[role=status]").count() == 1
    assert not trouble(reader), trouble(reader)
    context.close()


def test_without_webassembly_the_page_keeps_its_figure_and_says_why(browser, site_url):
    context, reader = open_page(browser, site_url, "delete globalThis.WebAssembly;")
    page = reader.page
    widget = page.locator(".mm-widget[data-widget=search]")
    page.wait_for_function(
        "() => document.querySelector('.mm-widget[data-widget=search]').dataset.state"
        " === 'unavailable'"
    )
    note = widget.locator(".mm-fallback")
    assert note.is_visible() and "cannot run WebAssembly" in note.inner_text()
    assert widget.locator("input").count() == 0
    assert page.locator("article img").count() > 0  # the page's static figures are still there
    assert not trouble(reader), trouble(reader)
    context.close()


def test_from_a_file_the_widget_asks_for_make_serve(browser, html_dir):
    context = browser.new_context()
    page = context.new_page()
    page.goto((html_dir / f"{SEARCH_PAGE}.html").as_uri())
    page.wait_for_function(
        "() => document.querySelector('.mm-widget[data-widget=search]').dataset.state"
        " === 'unavailable'"
    )
    note = page.locator(".mm-widget .mm-fallback")
    assert note.is_visible() and "make serve" in note.inner_text()
    context.close()


def assets_bytes(html_dir) -> int:
    """Bytes the widgets add to the site: ONNX Runtime Web and every widget's files."""
    folders = [html_dir / "_static" / "ort", html_dir / "_static" / "widgets"]
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())


def test_widget_assets_stay_small(html_dir):
    """All the widgets' assets, ONNX Runtime Web included, within 25 MB (the issue's bound)."""
    size = assets_bytes(html_dir)
    print(f"\nwidget assets: {size / 1e6:.2f} MB")
    assert 0 < size <= 25e6, size

"""The website as readers meet it: every page of `_toc.yml` in headless Chromium.

Pages come from `_toc.yml`, so new chapters are checked without editing this file. Each page must
load without console errors, render its math (MathJax), fonts, icons and images (each image with
alt text or a caption) with no request leaving 127.0.0.1, pass axe-core without "serious" or
"critical" violations, and link to the next page. Screenshots at desktop (1280 px) and phone
(390 px) widths go to _build/screenshots/; a summary of every request to
_build/browser-requests.txt.

Chromium is Debian's (`apt-get install chromium`); without it these tests are skipped, except
under CI=true, where that is a failure.
"""

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tools.site_tools import (
    CHROMIUM_HINT,
    NOT_LOCAL,
    ROOT,
    find_chromium,
    is_local,
    serve,
    toc_docnames,
    wait_until_rendered,
)

try:
    from axe_playwright_python.base import AXE_SCRIPT
except ImportError:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(
        "playwright / axe-playwright-python missing: `make setup` installs the test extra",
        allow_module_level=True,
    )

if find_chromium() is None:  # one line for the whole module, not one per test
    if os.environ.get("CI") == "true":
        pytest.fail(CHROMIUM_HINT, pytrace=False)
    pytest.skip(CHROMIUM_HINT, allow_module_level=True)

DOCNAMES = toc_docnames()
NOTEBOOKS = [name for name in DOCNAMES if (ROOT / f"{name}.ipynb").is_file()]
SCREENSHOTS = ROOT / "_build" / "screenshots"
REQUEST_LOG = ROOT / "_build" / "browser-requests.txt"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))

# Console errors a page may show. None: sphinx-thebe's doubled inline script, which threw on
# every page ("Identifier 'THEBE_JS_URL' has already been declared"), is written once by
# book/_ext/unique_scripts.py.
KNOWN_ERRORS: list[str] = []


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def base_url(html_dir):
    """The built site on a free port of 127.0.0.1; pages are opened relative to it."""
    with serve(html_dir) as url:
        yield url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, base_url):
    return {**browser_context_args, "base_url": base_url, "viewport": DESKTOP}


@pytest.fixture(scope="session")
def request_log():
    """Every URL any page requested; summarised in _build/browser-requests.txt at the end."""
    urls: list[str] = []
    yield urls
    hosts = Counter(
        "local" if is_local(u) else re.sub(r"^\w+://([^/]+).*$", r"\1", u) for u in urls
    )
    remote = sorted({u for u in urls if not is_local(u)})
    REQUEST_LOG.parent.mkdir(parents=True, exist_ok=True)
    REQUEST_LOG.write_text(
        f"{len(urls)} requests: {hosts['local']} local, {len(urls) - hosts['local']} non-local\n"
        + "".join(f"{host}: {n}\n" for host, n in hosts.most_common())
        + "".join(f"non-local: {u}\n" for u in remote),
        encoding="utf-8",
    )


class Reader:
    """A browser tab that records what a reader would not see: errors, failures, remote calls."""

    def __init__(self, page, request_log: list[str]):
        self.page = page
        self.errors: list[str] = []
        self.remote: list[str] = []
        self.failed: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self._error(f"uncaught: {error.message}"))
        page.on("request", lambda request: self._request(request.url, request_log))
        page.on("requestfailed", lambda r: is_local(r.url) and self.failed.append(r.url))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        # Nothing may leave the machine: non-local requests are recorded, then refused. (A regex,
        # not a Python predicate, so local requests are not sent through Python one by one.)
        page.context.route(NOT_LOCAL, lambda route: route.abort())

    def _console(self, message) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        self._error(f"console: {message.text} ({where})")

    def _error(self, text: str) -> None:
        if not any(known in text for known in KNOWN_ERRORS):
            self.errors.append(text)

    def _request(self, url: str, request_log: list[str]) -> None:
        request_log.append(url)
        if not is_local(url):
            self.remote.append(url)

    def open(self, docname: str):
        self.page.goto(f"{docname}.html")
        wait_until_rendered(self.page)
        return self.page


@pytest.fixture
def reader(page, request_log) -> Reader:
    return Reader(page, request_log)


# ---------------------------------------------------------------- what a page must show
MATH_JS = r"""() => {
    // Sphinx wraps math in span.math / div.math; MathJax puts an mjx-container inside each.
    const math = [...document.querySelectorAll(".math")];
    const unrendered = math.filter((el) => !el.querySelector("mjx-container"))
        .map((el) => el.textContent.trim().slice(0, 60));
    // TeX delimiters left in prose (outside code and rendered math) mean math was not parsed.
    const skip = "pre, code, script, style, textarea, mjx-container, .highlight";
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
        acceptNode: (node) => node.parentElement.closest(skip)
            ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
    });
    const raw = [];
    while (walker.nextNode()) {
        const text = walker.currentNode.textContent;
        if (/\$\$|\\\(|\\\[/.test(text)) raw.push(text.trim().slice(0, 80));
    }
    return {unrendered, raw};
}"""

IMAGES_JS = r"""() => [...document.images].map((img) => {
    const file = (img.getAttribute("src") || "").split("/").pop().split("?")[0];
    const alt = (img.getAttribute("alt") || "").trim();
    const caption = img.closest("figure")?.querySelector("figcaption")?.textContent.trim() || "";
    // Sphinx falls back to the file path as alt text: that describes nothing.
    const described = (alt !== "" && !alt.endsWith(file)) || caption !== "";
    return {file, loaded: img.complete && img.naturalWidth > 0, described};
})"""

RENDERING_JS = r"""() => ({
    failed_fonts: [...document.fonts].filter((f) => f.status === "error").map((f) => f.family),
    // Font Awesome's script swaps each <i class="fa-..."> for an inline <svg>.
    unrendered_icons: document.querySelectorAll('i[class*="fa-"]').length,
    icons: document.querySelectorAll("svg.svg-inline--fa").length,
})"""


def math_problems(page) -> dict[str, list[str]]:
    found = page.evaluate(MATH_JS)
    return {key: value for key, value in found.items() if value}


def image_problems(page) -> dict[str, list[str]]:
    images = page.evaluate(IMAGES_JS)
    problems = {
        "not loaded": [i["file"] for i in images if not i["loaded"]],
        "no alt text or caption": [i["file"] for i in images if not i["described"]],
    }
    return {key: value for key, value in problems.items() if value}


def rendering_problems(page) -> dict[str, object]:
    found = page.evaluate(RENDERING_JS)
    problems = {}
    if found["failed_fonts"]:
        problems["fonts that failed"] = found["failed_fonts"]
    if found["unrendered_icons"] or not found["icons"]:
        problems["icons"] = f"{found['icons']} drawn, {found['unrendered_icons']} not drawn"
    return problems


AXE_OPTIONS = {
    "resultTypes": ["violations"],
    "rules": {
        # At most "moderate", and the slowest rule on long pages.
        "region": {"enabled": False},
        # Checked by its own pass below: code blocks are left out of it because Pygments' colours
        # are the same on every page (test_code_colours_are_readable checks them once).
        "color-contrast": {"enabled": False},
    },
}
TEXT_CONTRAST = {"exclude": [["div.highlight"]]}, {"runOnly": ["color-contrast"]}


def axe_violations(page, context: dict | None, options: dict) -> list[str]:
    """axe-core's "serious" and "critical" violations, one line each."""
    if not page.evaluate("() => 'axe' in window"):
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("([c, o]) => axe.run(c || document, o)", [context, options])
    return [
        f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def accessibility_problems(page) -> dict[str, list[str]]:
    found = axe_violations(page, None, AXE_OPTIONS) + axe_violations(page, *TEXT_CONTRAST)
    return {"axe": found} if found else {}


def download_problems(page, docname: str) -> dict[str, str]:
    """A chapter's download menu offers its notebook, and that is the notebook in the repo."""
    if docname not in NOTEBOOKS:
        return {}
    page.locator(".dropdown-download-buttons > button").click()
    link = page.locator(".dropdown-download-buttons a", has_text=".ipynb")
    if not link.is_visible():
        return {"download": "no .ipynb in the download menu"}
    response = page.request.get(link.evaluate("a => a.href"))
    page.keyboard.press("Escape")
    source = json.loads((ROOT / f"{docname}.ipynb").read_text(encoding="utf-8"))
    if not response.ok or response.json().get("cells") != source["cells"]:
        return {"download": f"{response.url} ({response.status}) is not {docname}.ipynb"}
    return {}


def screenshot_problems(page, docname: str) -> dict[str, str]:
    """Full-page screenshots at both widths; a phone must never scroll the page sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = docname.replace("/", "-")
    page.screenshot(path=SCREENSHOTS / f"{stem}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    # The sidebars slide away when the layout switches to phone: wait for those transitions.
    page.evaluate(
        """() => Promise.all(document.getAnimations()
            .filter((a) => a.effect.getComputedTiming().endTime !== Infinity)
            .map((a) => a.finished.catch(() => null)))"""
    )
    page.screenshot(path=SCREENSHOTS / f"{stem}-phone.png", full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size(DESKTOP)
    if width > PHONE["width"]:
        return {"phone": f"the page is {width} px wide on a {PHONE['width']} px screen"}
    return {}


def navigation_problems(page, base_url: str, docname: str) -> dict[str, str]:
    """ "Previous" links to the page before in the toc; clicking "next" opens the page after."""
    index = DOCNAMES.index(docname)
    before = DOCNAMES[index - 1] if index else None
    after = DOCNAMES[index + 1] if index + 1 < len(DOCNAMES) else None
    problems = {}
    prev = page.locator("a.left-prev")
    prev_href = prev.evaluate("a => a.href") if prev.count() else None
    if prev_href != (before and f"{base_url}{before}.html"):
        problems["previous"] = f"links to {prev_href}, expected {before}"
    link = page.locator("a.right-next")
    if after is None:
        return {**problems, "next": "the last page has a next link"} if link.count() else problems
    with page.expect_navigation(wait_until="commit"):  # the URL is all this needs
        link.click()
    if page.url != f"{base_url}{after}.html":
        problems["next"] = f"went to {page.url}, expected {after}"
    return problems


# ---------------------------------------------------------------- per page
@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_as_a_reader_meets_it(reader, base_url, docname):
    """One visit per page of _toc.yml: all it must show, screenshots, then a click on "next"."""
    page = reader.open(docname)
    assert page.title(), "the page has no title"
    problems = {
        # What loading the page did (before axe, which fetches stylesheets its own way).
        "errors": list(reader.errors),
        "failed requests": list(reader.failed),
        "non-local requests": list(reader.remote),
        **math_problems(page),
        **image_problems(page),
        **rendering_problems(page),
        **accessibility_problems(page),
        **download_problems(page, docname),
        **screenshot_problems(page, docname),
    }
    problems.update(navigation_problems(page, base_url, docname))
    assert not {key: value for key, value in problems.items() if value}


def test_code_colours_are_readable(reader):
    """axe's colour-contrast rule on the code blocks that, together, use every Pygments colour."""
    docname = max(NOTEBOOKS, key=lambda name: (ROOT / f"{name}.ipynb").stat().st_size)
    page = reader.open(docname)
    sampled = page.evaluate(
        """() => {
            const seen = new Set();
            let sampled = 0;
            for (const block of document.querySelectorAll("div.highlight")) {
                const kinds = new Set([...block.querySelectorAll("span[class]")]
                    .map((span) => span.className));
                if ([...kinds].some((kind) => !seen.has(kind))) {
                    kinds.forEach((kind) => seen.add(kind));
                    block.dataset.axeSample = "";
                    sampled += 1;
                }
            }
            return sampled;
        }"""
    )
    assert sampled >= 1, f"{docname} has no highlighted code"
    assert not axe_violations(page, {"include": [["[data-axe-sample]"]]}, TEXT_CONTRAST[1])


def test_site_entry_redirects_to_the_first_page(reader, base_url):
    reader.page.goto("index.html")
    reader.page.wait_for_url(f"{base_url}{DOCNAMES[0]}.html")


def test_launch_buttons_appear_once_a_repository_is_set(html_dir):
    """Binder and Colab buttons on every chapter when repository.url is set, else none."""
    repository = (CONFIG.get("repository") or {}).get("url", "")
    launch = CONFIG.get("launch_buttons") or {}
    for docname in NOTEBOOKS:
        html = (html_dir / f"{docname}.html").read_text(encoding="utf-8")
        if not repository:
            assert "dropdown-launch-buttons" not in html, docname
            continue
        for key in ("binderhub_url", "colab_url"):
            assert launch.get(key), f"repository.url is set: set launch_buttons.{key} too (README)"
            assert f'href="{launch[key]}' in html, f"{docname} has no {key} button"


# ---------------------------------------------------------------- search
def pages_containing(html_dir: Path, word: str) -> list[str]:
    pattern = re.compile(rf"\b{re.escape(word)}", re.IGNORECASE)
    return [
        name
        for name in DOCNAMES
        if pattern.search(re.sub(r"<[^>]+>", " ", (html_dir / f"{name}.html").read_text("utf-8")))
    ]


# "contrastive" is the word the book is about (chapters 2, 3 and 6); "multimodal" is on the
# first page, so the search path is exercised even before those chapters are written.
@pytest.mark.parametrize("query", ["contrastive", "multimodal"])
def test_search_finds_a_word_and_lands_on_a_page_with_it(reader, html_dir, base_url, query):
    if not pages_containing(html_dir, query):
        pytest.skip(f"no page uses {query!r} yet")
    page = reader.open(DOCNAMES[0])
    page.keyboard.press("Control+k")
    box = page.locator("input[name=q]:focus")
    box.fill(query)
    with page.expect_navigation():
        box.press("Enter")
    assert "/search.html" in page.url
    page.locator("#search-results .search-summary").wait_for()
    results = page.locator("#search-results ul.search li a")
    assert results.count() >= 1, page.locator("#search-results").inner_text()
    with page.expect_navigation():
        results.first.click()
    wait_until_rendered(page)
    landed = page.url.removeprefix(base_url).split("?")[0].split("#")[0].removesuffix(".html")
    assert landed in DOCNAMES
    assert query.lower() in page.locator("article").inner_text().lower()


# ---------------------------------------------------------------- the checks can fail
PNG_DOT = bytes.fromhex(  # a 2x2 red PNG
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73000000164944415478"
    "9c63bc2327c7c0c0c0c4c0c0c0c0c000000e08011ce3c1fb420000000049454e44ae426082"
)


def test_checks_catch_what_a_reader_would_meet(page, html_dir, tmp_path):
    """The page checks pass a good page and flag each fault of a bad one."""
    reader = Reader(page, request_log=[])  # its deliberate remote request stays out of the log
    (tmp_path / "dot.png").write_bytes(PNG_DOT)
    (tmp_path / "mathjax").symlink_to(html_dir / "_static" / "mathjax")
    (tmp_path / "good.html").write_text(
        '<html lang="en"><title>Good</title><script src="mathjax/tex-mml-chtml.js"></script>'
        '<p>Area <span class="math">\\(\\pi r^2\\)</span></p>'
        '<figure><img src="dot.png" alt="dot.png"><figcaption>A dot</figcaption></figure>'
        '<img src="dot.png" alt="A red dot"></html>'
    )
    (tmp_path / "bad.html").write_text(
        '<html lang="en"><title>Bad</title><p>$$E = mc^2$$</p><span class="math">\\(x\\)</span>'
        '<img src="dot.png" alt="../_images/dot.png"><img src="gone.png" alt="A missing plot">'
        '<img src="dot.png"><script src="https://cdn.example.org/x.js"></script>'
        "<script>undefinedFunction()</script></html>"
    )
    with serve(tmp_path) as url:
        page.goto(url + "good.html")
        wait_until_rendered(page)
        assert page.locator("mjx-container").count() == 1
        assert math_problems(page) == {} and image_problems(page) == {}
        assert accessibility_problems(page) == {}
        assert reader.errors == reader.failed == reader.remote == []
        page.goto(url + "bad.html")
        wait_until_rendered(page)
        raw = ["$$E = mc^2$$", "\\(x\\)"]
        assert math_problems(page) == {"unrendered": ["\\(x\\)"], "raw": raw}
        assert image_problems(page) == {
            "not loaded": ["gone.png"],
            "no alt text or caption": ["dot.png", "dot.png"],
        }
        assert "image-alt" in str(accessibility_problems(page))
    assert reader.remote == ["https://cdn.example.org/x.js"]
    assert any("undefinedFunction" in error for error in reader.errors)
    assert any(failed.endswith("/gone.png") for failed in reader.failed)

"""The built pages load no script or stylesheet from the network: the site works offline."""

from html.parser import HTMLParser
from pathlib import Path


class AssetParser(HTMLParser):
    """Collects the URLs of external resources a page loads (scripts, stylesheets, images)."""

    def __init__(self):
        super().__init__()
        self.assets: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.assets.append(attrs["src"])
        elif tag == "link" and "stylesheet" in (attrs.get("rel") or "") and attrs.get("href"):
            self.assets.append(attrs["href"])
        elif tag == "img" and attrs.get("src"):
            self.assets.append(attrs["src"])


def remote_assets(page: Path) -> list[str]:
    parser = AssetParser()
    parser.feed(page.read_text(encoding="utf-8"))
    return [url for url in parser.assets if url.startswith(("http://", "https://", "//"))]


def test_no_page_loads_remote_assets(html_dir):
    pages = sorted(html_dir.rglob("*.html"))
    assert len(pages) >= 10
    offenders = {str(p.relative_to(html_dir)): remote_assets(p) for p in pages}
    assert not {p: urls for p, urls in offenders.items() if urls}


def test_mathjax_is_served_locally(html_dir):
    page = (html_dir / "chapters" / "05_code.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-mml-chtml.js" in page
    assert (html_dir / "_static" / "mathjax" / "tex-mml-chtml.js").exists()


def test_parser_detects_a_remote_script(tmp_path):
    page = tmp_path / "p.html"
    page.write_text('<script src="https://cdn.example/x.js"></script><img src="a.png">')
    assert remote_assets(page) == ["https://cdn.example/x.js"]


class ImageParser(HTMLParser):
    """A page's favicon links, and every image with its attributes (``logos``: the logo's)."""

    def __init__(self):
        super().__init__()
        self.icons: list[str] = []
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and "icon" in (attrs.get("rel") or "").split():
            self.icons.append(attrs.get("href", ""))
        elif tag == "img":
            self.images.append(attrs)

    @property
    def logos(self) -> list[dict]:
        return [img for img in self.images if "logo" in (img.get("class") or "")]


def test_every_page_has_the_favicon_and_the_logo(html_dir):
    """No page sends the browser looking for /favicon.ico: each links the book's own icon
    (tools/logo.py), and the sidebar shows the logo with alt text."""
    pages = [p for p in sorted(html_dir.rglob("*.html")) if "_static" not in p.parts]
    missing = {}
    for page in pages:
        if 'http-equiv="Refresh"' in page.read_text(encoding="utf-8"):
            continue  # index.html: Jupyter Book's redirect to the first page, never shown
        parser = ImageParser()
        parser.feed(page.read_text(encoding="utf-8"))
        problems = []
        if not any(href.endswith("_static/favicon.png") for href in parser.icons):
            problems.append(f"icons {parser.icons}")
        for href in parser.icons:
            if not (page.parent / href.split("?")[0]).resolve().exists():
                problems.append(f"missing {href}")
        if not parser.logos or not all(img.get("alt") for img in parser.logos):
            problems.append(f"logos {parser.logos}")
        if problems:
            missing[str(page.relative_to(html_dir))] = problems
    assert len(pages) >= 10 and not missing


def test_the_landing_page_shows_what_the_reader_will_build(html_dir):
    """The first page shows the figure of tools/landing.py, described in words, and it loads."""
    page = html_dir / "book" / "intro.html"
    parser = ImageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    landing = [img for img in parser.images if img.get("src", "").endswith("landing.png")]
    assert len(landing) == 1, parser.images
    assert "search" in landing[0].get("alt", "") and "flow-matching" in landing[0]["alt"]
    assert (page.parent / landing[0]["src"]).resolve().stat().st_size > 10_000

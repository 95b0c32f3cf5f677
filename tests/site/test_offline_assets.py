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

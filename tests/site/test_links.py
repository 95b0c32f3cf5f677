"""No broken link inside the built site; links that leave it are listed, never fetched.

LinkChecker crawls the site from index.html over a local server. It checks internal URLs only
(external ones just for syntax) and is slow at #fragments, so anchors are checked here with the
standard library. External links are written to _build/external-links.txt.
"""

import csv
import io
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tools.site_tools import ROOT, serve, toc_docnames

LINKCHECKER = Path(sys.executable).with_name("linkchecker")
EXTERNAL_LINKS = ROOT / "_build" / "external-links.txt"
# No pause between requests: site_tools' server sends the header that lets LinkChecker go fast.
LINKCHECKER_RC = "[checking]\nmaxrequestspersecond=1000\n"


def crawl(site: Path, tmp_path: Path) -> list[dict]:
    """LinkChecker's row for every URL reachable from site/index.html, URLs made site-relative."""
    if not LINKCHECKER.exists():
        message = "LinkChecker missing: `make setup` installs the test extra"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    rc = tmp_path / "linkcheckerrc"
    rc.write_text(LINKCHECKER_RC)
    with serve(site) as base:
        command = [LINKCHECKER, "-f", rc, "--no-status", "--verbose", "-o", "csv", "index.html"]
        result = subprocess.run(
            [str(part) for part in command[:-1]] + [base + command[-1]],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode in (0, 1), result.stderr  # 1: broken links found, 2: an error
    table = "".join(line for line in result.stdout.splitlines(True) if not line.startswith("#"))
    rows = list(csv.DictReader(io.StringIO(table), delimiter=";"))
    for row in rows:
        row["internal"] = row["url"].startswith(base)
        for key in ("url", "parentname"):
            row[key] = row[key].removeprefix(base)
    return rows


def test_no_broken_internal_links(html_dir, tmp_path):
    rows = crawl(html_dir, tmp_path)
    pages = {row["url"] for row in rows if row["internal"] and row["url"].endswith(".html")}
    assert {f"{name}.html" for name in toc_docnames()} <= pages, "the crawl missed toc pages"
    broken = [
        f"{row['url']} (linked from {row['parentname']}): {row['result']}"
        for row in rows
        if row["valid"] != "True"
    ]
    external = sorted(
        {
            (row["url"], row["parentname"])
            for row in rows
            if not row["internal"] and urlsplit(row["url"]).scheme not in ("data", "")
        }
    )
    EXTERNAL_LINKS.parent.mkdir(parents=True, exist_ok=True)
    EXTERNAL_LINKS.write_text("".join(f"{url}\t(on {page})\n" for url, page in external))
    assert not broken


def test_crawl_reports_a_broken_link(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text('<a href="a.html">a</a> <a href="https://example.org/">x</a>')
    (site / "a.html").write_text('<a href="gone.html">gone</a>')
    rows = {row["url"]: row for row in crawl(site, tmp_path)}
    assert rows["gone.html"]["valid"] == "False" and rows["a.html"]["valid"] == "True"
    assert rows["https://example.org/"]["internal"] is False


# ---------------------------------------------------------------- anchors
class LinksAndIds(HTMLParser):
    """The ids (and a[name]s) a page defines and the hrefs it links to."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids |= {attrs[key] for key in ("id", "name") if attrs.get(key)}
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def missing_anchors(site: Path) -> list[str]:
    """Internal links whose #fragment names no id on the page they point to."""
    pages = {}
    for path in site.rglob("*.html"):
        if not path.relative_to(site).parts[0].startswith("_"):  # not _static, _sources
            parser = LinksAndIds()
            parser.feed(path.read_text(encoding="utf-8"))
            pages[path.relative_to(site).as_posix()] = parser
    missing = []
    for page, parser in sorted(pages.items()):
        for href in parser.hrefs:
            target = urlsplit(urljoin(page, href))
            if target.scheme or target.netloc or not target.fragment:
                continue
            ids = pages[target.path].ids if target.path in pages else None
            if ids is not None and unquote(target.fragment) not in ids:
                missing.append(f"{page}: {href}")
    return missing


def test_every_anchor_link_finds_its_anchor(html_dir):
    assert missing_anchors(html_dir) == []


def test_anchor_check_reports_a_missing_anchor(tmp_path):
    (tmp_path / "a.html").write_text('<h1 id="top">A</h1><a href="b.html#gone">b</a>')
    (tmp_path / "b.html").write_text('<p id="here"><a href="a.html#top">a</a> <a href="#here">')
    assert missing_anchors(tmp_path) == ["a.html: b.html#gone"]

"""`make pdf` prints the whole book to _build/pdf/mmbook.pdf (no TeX), every toc page in it.

poppler's pdftotext reads the PDF back; each page's title and opening sentence, taken from the
website build, must be found in it (Chinese included, which needs a CJK font on the machine that
prints). `make site-test` runs `make pdf` first.
"""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from tools.site_tools import ROOT, toc_docnames

PDF = ROOT / "_build" / "pdf" / "mmbook.pdf"


def missing(what: str) -> None:
    """Skip locally, fail under CI: CI must have everything the site tests need."""
    if os.environ.get("CI") == "true":
        pytest.fail(what)
    pytest.skip(what)


def words(text: str) -> str:
    """Letters and digits only: PDF text breaks lines, hyphenates and spaces inline code."""
    return re.sub(r"[\W_]+", "", text).lower()


class Opening(HTMLParser):
    """The text of the first <h1> and of the first paragraph in a page's <article>."""

    def __init__(self):
        super().__init__()
        self.in_article = False
        self.inside: str | None = None
        self.text = {"h1": "", "p": ""}

    def handle_starttag(self, tag, attrs):
        self.in_article |= tag == "article"
        if self.in_article and tag in self.text and not self.text[tag] and not self.inside:
            self.inside = tag

    def handle_endtag(self, tag):
        if tag == self.inside:
            self.inside = None

    def handle_data(self, data):
        if self.inside:
            self.text[self.inside] += data

    @property
    def title(self) -> str:
        """Without the section number and the "#" of the heading's permalink."""
        return re.sub(r"^[\d.\s]+", "", self.text["h1"]).removesuffix("#").strip()

    @property
    def first_paragraph(self) -> str:
        return " ".join(self.text["p"].split())


@pytest.fixture(scope="module")
def pdf():
    """(page count, text) of the printed book."""
    if not PDF.is_file():
        missing(f"{PDF.relative_to(ROOT)} is missing: run `make pdf`")
    if shutil.which("pdftotext") is None:
        missing("pdftotext not found: install it with `sudo apt-get install poppler-utils`")
    info = subprocess.run(["pdfinfo", PDF], capture_output=True, text=True, check=True).stdout
    text = subprocess.run(["pdftotext", PDF, "-"], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1)), text.stdout


def test_every_toc_page_is_in_the_pdf(pdf, html_dir):
    _, text = pdf
    printed = words(text)
    absent = {}
    for name in toc_docnames():
        opening = Opening()
        opening.feed((html_dir / f"{name}.html").read_text(encoding="utf-8"))
        for what in (opening.title, opening.first_paragraph[:80]):
            if not words(what) or words(what) not in printed:
                absent.setdefault(name, []).append(what)
    assert not absent


def test_pdf_pages_are_neither_empty_nor_crammed(pdf):
    pages, text = pdf
    per_page = len(words(text)) / pages
    assert pages >= len(toc_docnames()) // 4
    assert 300 <= per_page <= 4000, f"{pages} pages, {per_page:.0f} letters a page"


def test_opening_reads_title_and_first_paragraph():
    opening = Opening()
    opening.feed(
        '<nav><h1>Site</h1></nav><article><h1><span class="section-number">5. </span>'
        'Code<a href="#x">#</a></h1><div><p>First <em>one</em>.</p><p>Second.</p></div></article>'
    )
    assert (opening.title, opening.first_paragraph) == ("Code", "First one.")


def test_long_code_lines_are_wrapped_not_cut(pdf):
    """A printed page cannot scroll sideways: book/assets/mmbook.css wraps code when printing."""
    _, text = pdf
    lines = [
        line
        for name in toc_docnames()
        if (ROOT / f"{name}.ipynb").is_file()
        for cell in json.loads((ROOT / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        if cell["cell_type"] == "code"
        and not {"remove-input", "remove-cell"} & set(cell["metadata"].get("tags", []))
        for line in "".join(cell["source"]).splitlines()
    ]
    longest = max(lines, key=len)
    assert words(longest) in words(text), longest


def test_chinese_is_printed_with_a_chinese_font(pdf):
    """Without a CJK font Chromium prints the article's Chinese titles as empty boxes."""
    _, text = pdf
    if not re.search(r"[\u4e00-\u9fff]", text):
        pytest.skip("the book has no Chinese text")
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    families = {words(f) for line in listed.stdout.splitlines() for f in line.split(",")}
    if not families - {""}:
        missing("no Chinese font: `sudo apt-get install fonts-wqy-microhei`, then `make pdf`")
    table = subprocess.run(["pdffonts", PDF], capture_output=True, text=True, check=True).stdout
    embedded = {words(re.sub(r"^[A-Z]{6}\+", "", row.split()[0])) for row in table.splitlines()[2:]}
    assert any(font.startswith(family) for font in embedded for family in families if family), (
        f"{PDF.name} embeds {sorted(embedded)}, no Chinese font: run `make pdf` again"
    )


def page_texts() -> list[str]:
    """The text of each printed page, in order."""
    text = subprocess.run(["pdftotext", PDF, "-"], capture_output=True, text=True, check=True)
    return text.stdout.split("\f")


def test_every_page_of_the_book_starts_a_new_sheet(pdf, html_dir):
    """Each toc page's title opens a printed page, as a chapter does in a book (mmbook.css)."""
    openings = [re.sub(r"^\d+", "", words(page)) for page in page_texts()]  # less "3.1"
    late = []
    for name in toc_docnames():
        opening = Opening()
        opening.feed((html_dir / f"{name}.html").read_text(encoding="utf-8"))
        title = re.sub(r"^\d+", "", words(opening.title))  # "3.2–3.3 Fine-tuning": less "33"
        if not any(sheet.startswith(title) for sheet in openings):
            late.append(name)
    assert not late


def test_pdf_has_an_outline_of_chapters_and_sections(pdf, html_dir):
    """Bookmarks: every toc page's title, and sections below the chapters."""
    if shutil.which("pdftohtml") is None:
        missing("pdftohtml not found: install it with `sudo apt-get install poppler-utils`")
    xml = subprocess.run(
        ["pdftohtml", "-xml", "-i", "-q", "-stdout", "-f", "1", "-l", "1", PDF],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    outline = xml[xml.find("<outline") :]
    assert outline.startswith("<outline"), "the PDF has no outline"
    items = [
        words(re.sub(r"<[^>]+>", "", item))
        for item in re.findall(r"<item[^>]*>.*?</item>", outline)
    ]
    titles = []
    for name in toc_docnames():
        opening = Opening()
        opening.feed((html_dir / f"{name}.html").read_text(encoding="utf-8"))
        titles.append(words(opening.title))
    absent = [title for title in titles if not any(title in item for item in items)]
    assert not absent
    assert outline.count("<outline") > 1, "no sections under the chapters"


def test_sheet_1_is_a_title_page_with_the_landing_figure(pdf):
    """tools/print_pdf.py: the book's title and the landing figure, the contents on sheet 2."""
    first, second = page_texts()[:2]
    assert words("Multimodal Models, Hands-On") in words(first)
    assert "Contents" not in first and "Contents" in second
    listing = subprocess.run(
        ["pdfimages", "-list", "-f", "1", "-l", "1", PDF],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[2:]  # two header lines, then one line per image
    sizes = [line.split()[3:5] for line in listing]  # width and height in pixels
    assert ["900", "396"] in sizes, f"no landing figure on sheet 1: {sizes}"

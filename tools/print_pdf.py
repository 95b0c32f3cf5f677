"""Print the single-page HTML build of the book to PDF with headless Chromium (no TeX).

`make pdf` runs `jupyter-book build . --builder singlehtml`, then:

    python -m tools.print_pdf _build/singlehtml _build/pdf/mmbook.pdf

Without Chromium it prints one line saying how to install it and stops: with exit status 0 on a
reader's machine (so `make test` goes on, and the PDF test is skipped), 1 under CI=true.

The page is served from 127.0.0.1 and printed once MathJax, fonts and images are done. Before
printing, the landing page's figure (book/assets/landing.png, drawn by tools/landing.py) moves
under the book's title, and the contents start on the next sheet: sheet 1 is a title page.
Sphinx writes the single page at the root document's path (book/intro.html) but with links
relative to the build root, so it is copied to the root as book.html before printing.
"""

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

from tools.site_tools import (
    CHROMIUM_ARGS,
    CHROMIUM_HINT,
    find_chromium,
    serve,
    wait_until_rendered,
)

__all__ = ["print_book"]

FOOTER = (
    '<div style="width:100%; font-size:8px; text-align:center; color:#555;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)


# Sheet 1: the title, then the landing figure; the contents begin on sheet 2.
TITLE_PAGE = """() => {
    const title = document.querySelector("#jb-print-docs-body h1");
    const image = document.querySelector('img[src$="landing.png"]');
    const figure = image && image.closest("figure");
    const contents = document.getElementById("jb-print-toc");
    if (!title || !figure || !contents) return false;
    title.after(figure);
    contents.style.breakBefore = "page";
    return true;
}"""


def print_book(html_dir: Path, pdf: Path) -> int:
    """Print `html_dir`/index.html (a singlehtml build) to `pdf`; returns the size in bytes."""
    from playwright.sync_api import sync_playwright

    index = html_dir / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"html_dir must hold a singlehtml build, got {html_dir}")
    # index.html redirects to the root document: <meta http-equiv="Refresh" content="0; url=...">
    target = re.search(r'url=([^"]+)"', index.read_text(encoding="utf-8"))
    single_page = html_dir / (target.group(1) if target else "index.html")
    shutil.copyfile(single_page, html_dir / "book.html")
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(CHROMIUM_HINT)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with serve(html_dir) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(base + "book.html")
        wait_until_rendered(page)
        if not page.evaluate(TITLE_PAGE):
            raise FileNotFoundError("the title, the landing figure or the contents is missing")
        page.pdf(
            path=str(pdf),
            format="A4",
            print_background=True,
            margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
            display_header_footer=True,
            header_template="<span></span>",
            footer_template=FOOTER,
            outline=True,  # bookmarks from the headings: chapters and their sections
            tagged=True,  # Chromium builds the outline from the tags: untagged, the PDF has none
        )
        browser.close()
    return pdf.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", type=Path, help="the singlehtml build, e.g. _build/singlehtml")
    parser.add_argument("pdf", type=Path, help="the PDF to write, e.g. _build/pdf/mmbook.pdf")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print(f"make pdf: skipped: {CHROMIUM_HINT}", file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 0
    try:
        size = print_book(args.html_dir, args.pdf)
    except FileNotFoundError as error:
        print(f"make pdf: {error}", file=sys.stderr)
        return 1
    print(f"{args.pdf}: {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The book in JupyterLab, as a reader meets it: `make setup`, `jupyter lab`, open a page, Run All.

JupyterLab runs from .venv on 127.0.0.1 (a free port, a token, no browser; news, update checks
and the extension manager's PyPI listing off; settings, runtime files and the notebook-signing
database in a temporary folder) and is driven by Debian's headless Chromium. It serves a
temporary copy of the pages, so the committed notebooks are never changed, and nothing the
browser asks for may leave 127.0.0.1. The kernel is the notebooks' own, `mmbook-cpu`; progress
bars are on (TQDM_DISABLE is removed), as they are for a reader.

- `jupyterlab_fixture.ipynb` (next to this file) holds one of each construct the chapters use:
  admonitions, a glossary term, math, a proof, exercises with a dropdown and a gated solution,
  `{eval}` roles with one and with two backticks, and a training run with a progress bar. Its
  outputs and `{eval}` values are stored as the chapters' are:
  `make notebooks NB=tests/site/jupyterlab_fixture.ipynb`.
- One chapter, the cheapest (smallest `budget_s`) with `{eval}` roles, an exercise and an
  admonition, runs from top to bottom.

On opening, each page must show its stored `{eval}` values (no "Trust notebook" needed); after
Run All every code cell has run, no cell shows an error or anything on stderr, every markdown
cell is rendered by jupyterlab-myst with no raw MyST left (`:label:`, ```` ```{ ````,
`{eval}`...), and every `{eval}` role shows a value computed by the kernel.

Chromium is Debian's (`apt-get install chromium`); without it these tests are skipped, except
under CI=true, where that is a failure.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tools.execute_notebook import eval_expressions
from tools.site_tools import CHROMIUM_HINT, NOT_LOCAL, ROOT, find_chromium

try:
    import playwright.sync_api
except ImportError:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright missing: `make setup` installs the test extra", allow_module_level=True)

if find_chromium() is None:  # one line for the whole module, not one per test
    if os.environ.get("CI") == "true":
        pytest.fail(CHROMIUM_HINT, pytrace=False)
    pytest.skip(CHROMIUM_HINT, allow_module_level=True)

FIXTURE = Path(__file__).with_name("jupyterlab_fixture.ipynb")
JUPYTER = Path(sys.executable).with_name("jupyter")
SERVER_START_S = 120
OPEN_S = 120  # the page loaded, the kernel started, every markdown cell rendered
SCREENSHOTS = ROOT / "_build" / "screenshots"

# JupyterLab settings for the run (in its temporary settings folder): attach every cell to the
# page, so that all of them are rendered and can be read (the default renders cells as they
# scroll into view), and never ask about or fetch Jupyter's news.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

# MyST left as text in rendered markdown (code blocks and the TeX source of math are left out).
RAW_MYST = re.compile(r"```|:::|\{[a-z][\w:-]*\}|^:[\w-]+:|Unknown Directive", re.MULTILINE)
# Inline code spans that are not the content of a role: `x`, not {eval}`x`.
INLINE_CODE = re.compile(r"(?<![`}])(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def budget(path: Path) -> float:
    return json.loads(path.read_text(encoding="utf-8"))["metadata"]["mmbook"]["budget_s"]


def cheapest_chapter() -> Path:
    """The chapter with the smallest budget that has an {eval} role, an exercise, an admonition."""

    def has_all(path: Path) -> bool:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        return all(word in text for word in ("{eval}", "```{exercise}", "```{admonition}"))

    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    return min([p for p in chapters if has_all(p)] or chapters, key=budget)


CHAPTER = cheapest_chapter()


# ---------------------------------------------------------------- JupyterLab
@pytest.fixture(scope="session")
def base_url():
    """Pages are opened by their full address (this replaces pytest-base-url's fixture)."""
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: `pages` is the folder it serves, `url(name)` a notebook's address."""

    def __init__(self, pages: Path, base: str, token: str, log: Path):
        self.pages, self.base, self.token, self.log = pages, base, token, log

    def url(self, name: str) -> str:
        # `reset`: a fresh workspace, with no notebook of an earlier test reopened beside it.
        return f"{self.base}/lab/tree/{name}?reset&token={self.token}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab on 127.0.0.1 serving a copy of chapters/ and of the fixture."""
    home = tmp_path_factory.mktemp("jupyterlab")
    pages = home / "pages"
    shutil.copytree(ROOT / "chapters", pages)
    shutil.copy(FIXTURE, pages)
    for name, values in LAB_SETTINGS.items():
        path = home / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "TQDM_"))}
    env.update(
        PATH=f"{JUPYTER.parent}{os.pathsep}{env.get('PATH', '')}",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),  # the kernels are the venv's, found via sys.prefix
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )
    port, token = free_port(), os.urandom(16).hex()
    command = [
        str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={pages}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root
    log_path = home / "jupyterlab.log"
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            command, cwd=pages, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5).close()
                break
            except OSError:
                log_tail = log_path.read_text(encoding="utf-8")[-3000:]
                assert server.poll() is None, f"jupyter lab exited:\n{log_tail}"
                assert time.monotonic() < deadline, f"jupyter lab did not start:\n{log_tail}"
                time.sleep(0.5)
        yield Lab(pages, base, token, log_path)
    finally:
        stop(server, base, token)


def stop(server: subprocess.Popen, base: str, token: str) -> None:
    """Shut the kernels down through the REST API, then the server (killed if it hangs)."""
    api = f"{base}/api/kernels"
    headers = {"Authorization": f"token {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(api, headers=headers), timeout=10) as r:
            kernels = json.load(r)
        for kernel in kernels:
            request = urllib.request.Request(
                f"{api}/{kernel['id']}", method="DELETE", headers=headers
            )
            urllib.request.urlopen(request, timeout=30).close()
    except OSError:
        pass  # the server is gone already; its kernels stop when their parent does
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


class Notebook:
    """A notebook open in JupyterLab, read cell by cell in the order of its .ipynb."""

    def __init__(self, page, url: str, source: Path):
        self.page, self.source = page, source
        self.cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
        self.remote: list[str] = []
        self.page_errors: list[str] = []
        page.on("pageerror", lambda error: self.page_errors.append(error.message))
        page.on("request", lambda r: NOT_LOCAL.match(r.url) and self.remote.append(r.url))
        page.context.route(NOT_LOCAL, lambda route: route.abort())
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_function(
            """(n) => {
                const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Cell');
                const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
                return cells.length === n && status && status.dataset.status === 'idle'
                    && !document.querySelector('.jp-MarkdownCell:not(.jp-mod-rendered)');
            }""",
            arg=len(self.cells),
            timeout=OPEN_S * 1000,
        )
        self.wait_for_myst()

    def wait_for_myst(self, timeout_s: float = 30) -> None:
        """Wait until jupyterlab-myst has rendered every markdown cell (problems() says if not)."""
        try:
            self.page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-MarkdownCell')]
                    .every((cell) => cell.querySelector('.jp-Cell-inputWrapper .myst'))""",
                timeout=timeout_s * 1000,
            )
        except playwright.sync_api.TimeoutError:
            pass

    def run_all(self, timeout_s: float) -> None:
        """Run > Run All Cells, then wait until every code cell has its number and all is idle."""
        # The stored prompts are numbered and the kernel idle before the run as after it: wait
        # for the run to have started too (a cell queued or running, seen by an observer).
        self.page.evaluate(
            """() => {
                window.mmbookRunStarted = false;
                new MutationObserver((changes, observer) => {
                    const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
                    const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')];
                    if ((status && status.dataset.status !== 'idle')
                            || prompts.some((p) => p.innerText.includes('*'))) {
                        window.mmbookRunStarted = true;
                        observer.disconnect();
                    }
                }).observe(document.body, {subtree: true, childList: true, characterData: true,
                                           attributes: true, attributeFilter: ['data-status']});
            }"""
        )
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        self.page.wait_for_function(
            """() => {
                if (!window.mmbookRunStarted) return false;
                const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
                return status && status.dataset.status === 'idle'
                    && prompts.every((p) => /^\\[\\d+\\]/.test(p.innerText.trim()))
                    && !document.querySelector('.jp-MarkdownCell:not(.jp-mod-rendered)');
            }""",
            timeout=timeout_s * 1000,
        )
        self.wait_for_myst()

    def read(self) -> list[dict]:
        """Per cell: whether jupyterlab-myst rendered it, its visible text, inline code, errors."""
        seen = self.page.evaluate(
            """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-Cell')].map((cell) => {
                const markdown = cell.classList.contains('jp-MarkdownCell');
                const input = cell.querySelector('.jp-Cell-inputWrapper');
                // The visible text without code blocks and TeX sources, read from a copy laid
                // out beside the cell's input (innerText needs layout and the page's styles).
                const clone = input.cloneNode(true);
                clone.querySelectorAll('pre, .katex-mathml, .jp-InputArea-editor.lm-mod-hidden')
                    .forEach((node) => node.remove());
                input.after(clone);
                const text = clone.innerText;
                clone.remove();
                const errors = cell.querySelectorAll(
                    '[data-mime-type="application/vnd.jupyter.stderr"],' +
                    '[data-mime-type="application/vnd.jupyter.error"]');
                return {
                    markdown,
                    myst: !!cell.querySelector('.jp-Cell-inputWrapper .myst'),
                    text: markdown ? text : '',
                    code: [...cell.querySelectorAll('.myst code')].map((c) => c.innerText.trim()),
                    errors: [...errors].map((e) => e.innerText.slice(0, 500)),
                    output: markdown ? '' : cell.querySelector('.jp-Cell-outputWrapper').innerText,
                    progress: cell.querySelectorAll('.jp-OutputArea .widget-hprogress').length,
                    math: cell.querySelectorAll('.jp-Cell-inputWrapper .katex').length,
                };
            })"""
        )
        assert len(seen) == len(self.cells), "JupyterLab shows another number of cells"
        return seen

    def problems(self, *, evaluated: bool = True) -> dict[str, list[str]]:
        """What a reader would not want to see; with `evaluated`, unevaluated {eval} roles too."""
        found: dict[str, list[str]] = {
            "not rendered by jupyterlab-myst": [],
            "raw MyST": [],
            "errors": [],
            "{eval} without a value": [],
            "requests leaving 127.0.0.1": self.remote,
            "uncaught page errors": self.page_errors,
        }
        for k, (cell, seen) in enumerate(zip(self.cells, self.read(), strict=True)):
            source = "".join(cell["source"])
            found["errors"] += [f"cell {k}: {error}" for error in seen["errors"]]
            if cell["cell_type"] != "markdown":
                continue
            if not seen["myst"]:
                found["not rendered by jupyterlab-myst"].append(f"cell {k}: {source[:80]!r}")
            text = seen["text"]
            found["raw MyST"] += [
                f"cell {k}: {m.group(0)!r} in {text[max(0, m.start() - 60) : m.end() + 60]!r}"
                for m in RAW_MYST.finditer(text)
            ]
            # An {eval} role with no value is shown as inline code of its expression.
            shown, written = (
                Counter(seen["code"]),
                Counter(m.group(2).strip() for m in INLINE_CODE.finditer(source)),
            )
            if evaluated:
                found["{eval} without a value"] += [
                    f"cell {k}: {expression}"
                    for expression in eval_expressions(source)
                    if shown[expression] > written[expression]
                ]
        return {what: items for what, items in found.items() if items}

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"jupyterlab-{name}.png")


# ---------------------------------------------------------------- tests
def test_the_fixture_reads_right_as_opened_and_after_run_all(page, lab):
    # The copy served is the fixture as committed, except that the values stored for the "Key
    # takeaways" cell are removed: it must get them from the kernel on the first Run All.
    served = json.loads(FIXTURE.read_text(encoding="utf-8"))
    takeaways = next(
        k for k, c in enumerate(served["cells"]) if "Key takeaways" in "".join(c["source"])
    )
    del served["cells"][takeaways]["metadata"]["user_expressions"]
    (lab.pages / FIXTURE.name).write_text(json.dumps(served), encoding="utf-8")

    notebook = Notebook(page, lab.url(FIXTURE.name), FIXTURE)
    assert notebook.problems(evaluated=False) == {}, "as opened"
    opened = notebook.read()
    # Stored values show at once, with one or two backticks, in a notebook that is not trusted
    # (the signature database is new); a role with no stored value shows its expression as code.
    assert f"Notebook {FIXTURE.name} is not trusted" in lab.log.read_text(encoding="utf-8")
    assert "from the cell above: 42, and with two backticks 25.0." in opened[2]["text"]
    assert "answer" in opened[takeaways]["code"]

    notebook.run_all(timeout_s=120)
    notebook.screenshot("fixture")
    assert notebook.problems() == {}, "after Run All"
    cells = notebook.read()
    assert "The answer is 42." in cells[takeaways]["text"]  # evaluated on the first run
    assert "Learning goals" in cells[0]["text"] and "learning rate" in cells[0]["text"]
    assert cells[0]["math"] == 1
    assert "Proposition 1 (Gradients split)" in cells[3]["text"]
    for words in ("Key takeaways", "Exercise 1", "Solution to Exercise", "Exercise 2"):
        assert words in cells[takeaways]["text"]
    # The progress bar is a widget (ipywidgets), with no "IProgress not found" on stderr.
    train = next(
        k
        for k, c in enumerate(served["cells"])
        if "mmlib.training.loop.train(" in "".join(c["source"])
    )
    assert cells[train]["progress"] == 1 and "3/3" in cells[train]["output"]


@pytest.mark.parametrize("chapter", [CHAPTER], ids=[CHAPTER.stem])
def test_a_chapter_opens_with_its_numbers_and_runs_to_the_end(page, lab, chapter):
    notebook = Notebook(page, lab.url(chapter.name), chapter)
    assert notebook.problems() == {}, "as opened, before running"
    start = time.monotonic()
    notebook.run_all(timeout_s=120 + 4 * budget(chapter))
    seconds = time.monotonic() - start
    notebook.screenshot(chapter.stem)
    assert notebook.problems() == {}, f"after Run All ({seconds:.0f} s)"
    text = "\n".join(seen["text"] for seen in notebook.read())
    assert "Key takeaways" in text and "Exercise 1" in text and "Solution to Exercise" in text

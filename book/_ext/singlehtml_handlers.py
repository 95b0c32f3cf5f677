"""Let the single-page build (``make pdf``) render every node the HTML build renders.

Sphinx looks up a node's visitor functions by builder name and falls back to the builder's
format ("html") only when no extension has registered anything under that name. sphinx-exercise
registers its nodes under "singlehtml"; sphinx-proof 0.4 registers its nodes for "html" only.
The fallback is then skipped, and chapter 4's ``{prf:proposition}`` stops the singlehtml build
with "unknown node type: proposition_node". This copies each missing "html" handler to
"singlehtml" once the builder exists.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def copy_html_handlers(app: Sphinx) -> None:
    handlers = app.registry.translation_handlers
    if app.builder.name == "singlehtml" and "singlehtml" in handlers:
        for node_name, visitors in handlers.get("html", {}).items():
            handlers["singlehtml"].setdefault(node_name, visitors)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", copy_html_handlers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

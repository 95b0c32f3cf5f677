"""Each script once per page.

sphinx-thebe 0.3.1 (loaded by Jupyter Book 1 whether or not live code cells are on) adds its
inline configuration script, ``const THEBE_JS_URL = ...``, to the page's scripts twice, so the
second declaration throws on every page (an uncaught error in the reader's console). This drops
a script that repeats an earlier one of the same page: same file or body, same attributes (the
second copy names no file as "" where the first has None). togglebutton's inline script is
doubled the same way; declared with ``var``, it did no harm, and is written once now too.
"""

from __future__ import annotations


def keep_first_of_each_script(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:  # sphinx's _JavaScript (or a plain file name)
        attributes = getattr(script, "attributes", {})
        name = getattr(script, "filename", script) or ""  # an inline script: None, or ""
        key = (str(name), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", keep_first_of_each_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

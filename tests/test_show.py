"""mmlib/book/show.py: a chapter shows mmlib's own source."""

import mmlib
from mmlib.book.show import show_source, source_of
from tests.bad_input import raises_naming


def test_show_source_strips_module_docstring():
    text = source_of(mmlib.seed)
    assert text.startswith("from __future__") and '"""Seeding' not in text.splitlines()[0]
    assert "def seed_everything" in show_source(mmlib.seed_everything).data
    with raises_naming(TypeError, "obj"):
        source_of(42)

"""One way to test bad input: the error's type, and the argument it names.

Error tests assert these two, not whole sentences, so that rewording a message does not
break a test, while removing a check, raising the wrong type or naming the wrong argument
does.
"""

import re

import pytest


def raises_naming(error: type[Exception], argument: str):
    """``pytest.raises(error)`` whose message must name ``argument`` as a whole word
    (``grid`` matches "grid must be ..." and "(grid=3)", not "gridsize")."""
    return pytest.raises(error, match=rf"(?<![\w.]){re.escape(argument)}(?!\w)")

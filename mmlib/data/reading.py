"""Reading the shapes world's text back: a caption into its objects, a question into its kind.

Generated captions are scored by parsing them (:func:`parse_caption`) and comparing the parts
with the scene's; answers are grouped by the kind of question (:func:`question_type`). Both
read text as the tokenizer writes it back (:meth:`~mmlib.data.tokenizer.Tokenizer.normalise`).
"""

from __future__ import annotations

import re

from mmlib.data.tokenizer import Tokenizer
from mmlib.data.world import _WHERE, ATTRIBUTES, RELATIONS
from mmlib.validate import check_type

__all__ = ["QUESTION_TYPES", "parse_caption", "question_type"]


_SIZES, _COLOURS, _SHAPES = ATTRIBUTES["size"], ATTRIBUTES["colour"], ATTRIBUTES["shape"]


_OBJECT = rf"a ({'|'.join(_SIZES)}) ({'|'.join(_COLOURS)}) ({'|'.join(_SHAPES)})"


_PLACE = {phrase: place for place, phrase in _WHERE.items()}  # "on the left" -> "left"


_ONE = re.compile(rf"{_OBJECT} ({'|'.join(_PLACE)})")


_TWO = re.compile(rf"{_OBJECT} ({'|'.join(RELATIONS)}) {_OBJECT}")


def parse_caption(caption: str) -> dict | None:
    """Read a caption back: ``{"objects": [(size, colour, shape), ...], "where": str}`` where
    ``where`` is a position (one object) or a relation (two), or None if it does not parse."""
    check_type("caption", caption, str)
    text = Tokenizer.normalise(caption)
    if match := _ONE.fullmatch(text):
        return {"objects": [match.groups()[:3]], "where": _PLACE[match.group(4)]}
    if match := _TWO.fullmatch(text):
        g = match.groups()
        return {"objects": [g[:3], g[4:]], "where": g[3]}
    return None


QUESTION_TYPES = ("count", "colour", "shape", "size", "position", "relation", "exists")


_OPENINGS = (  # how each type of question from mmlib.data.scenes begins
    ("how many", "count"),
    ("what colour is", "colour"),
    ("what shape is", "shape"),
    ("what size is", "size"),
    ("where is", "position"),
    ("is there", "exists"),
    ("is the", "relation"),
    ("and the", "follow-up"),
)


def question_type(question: str) -> str:
    """The kind of a question from :mod:`mmlib.data.scenes`: one of :data:`QUESTION_TYPES`, or
    ``"follow-up"`` for "and the square?"."""
    check_type("question", question, str)
    text = Tokenizer.normalise(question)
    for opening, kind in _OPENINGS:
        if text.startswith(opening + " "):
            return kind
    raise ValueError(f"question must start like one from mmlib.data.scenes, got {question!r}")

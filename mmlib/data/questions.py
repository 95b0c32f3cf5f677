"""Questions about a scene and their one-word answers.

Every scene of :func:`mmlib.data.scenes.make_scenes` comes with questions of seven kinds
(:data:`mmlib.data.reading.QUESTION_TYPES`): how many shapes, the colour, shape, size and place
of an object named so that only one object fits ("the small circle"), a relation between the
two objects, and whether an object of some colour and shape is there (half of them absent).
"""

from __future__ import annotations

import functools

from mmlib.data.world import (
    _KEYS,
    _NUMBERS,
    _TRUE_RELATIONS,
    ANSWERS,
    ATTRIBUTES,
    COLOURS,
    RELATIONS,
    SHAPES,
)

__all__ = []


def _reference(looks: tuple[tuple[int, int, int], ...], i: int, keys: tuple[int, ...]):
    """'the small circle' if these attribute columns single out object i, else None."""
    mine = [looks[i][k] for k in keys]
    if any([o[k] for k in keys] == mine for j, o in enumerate(looks) if j != i):
        return None
    names = [ATTRIBUTES[_KEYS[k]][looks[i][k]] for k in (2, 1, 0) if k in keys]
    return "the " + " ".join(names if 0 in keys else [*names, "object"])


_ASK = (  # question, answer column, references to try (attribute columns), shortest first
    ("what colour is {}?", 1, ((0,), (2, 0))),
    ("what shape is {}?", 0, ((1,), (2,), (2, 1))),
    ("what size is {}?", 2, ((0,), (1, 0))),
    ("where is {}?", 3, ((0,), (1, 0), (2, 0), (2, 1, 0))),
)


@functools.cache
def _askable(looks: tuple[tuple[int, int, int], ...]) -> tuple[list[tuple[str, int]], ...]:
    """Per object (shape, colour, size): the questions that single it out, as (question,
    answer column), and last its shortest name ("the red circle") or None."""
    per_object = []
    for i in range(len(looks)):
        asked = []
        for question, column, options in _ASK:
            ref = next((r for keys in options if (r := _reference(looks, i, keys))), None)
            if ref is not None:
                asked.append((question.format(ref), column))
        per_object.append((asked, ref))  # ref: the name used by "where is ...?"
    return tuple(per_object)


_COLOUR_SHAPE = [(c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES))]


def _absent_pairs(present: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The (colour, shape) pairs of the world that are not in ``present``, in a fixed order."""
    return [pair for pair in _COLOUR_SHAPE if pair not in present]


def _exists_question(colour: int, shape: int) -> str:
    """'is there a red circle?' for indices into COLOURS and SHAPES."""
    return f"is there a {COLOURS[colour]} {SHAPES[shape]}?"


def _questions(objects: list[list[int]], u: list[float]) -> list[tuple[str, str]]:
    """Question-answer pairs for one scene; ``u`` holds uniform numbers for the random picks."""
    qa = [("how many shapes?", _NUMBERS[len(objects)])]
    askable = _askable(tuple(tuple(obj[:3]) for obj in objects))
    for obj, (asked, _) in zip(objects, askable, strict=True):
        qa += [(question, ATTRIBUTES[_KEYS[c]][obj[c]]) for question, c in asked]
    if len(objects) == 2 and askable[0][1] and askable[1][1]:
        a = int(u[0] < 0.5)
        b = 1 - a
        held = _TRUE_RELATIONS[objects[a][3]][objects[b][3]]
        axis = held[int(u[1] * len(held))] // 2  # 0: left/right, 1: above/below
        asked = 2 * axis + int(u[2] < 0.5)
        question = f"is {askable[a][1]} {RELATIONS[asked]} {askable[b][1]}?"
        qa.append((question, ANSWERS[int(asked in held)]))
    present = sorted({(obj[1], obj[0]) for obj in objects})
    if u[3] < 0.5:
        colour, shape = present[int(u[4] * len(present))]
    else:
        absent = _absent_pairs(present)
        colour, shape = absent[int(u[4] * len(absent))]
    qa.append((_exists_question(colour, shape), ANSWERS[int(u[3] < 0.5)]))
    return qa

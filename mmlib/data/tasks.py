"""Tasks built from scenes: the examples each chapter trains and tests on.

- :func:`caption_match`: is this caption true of this image? (chapters 1-5)
- :func:`qa_examples`: every question of every scene, with its answer (chapter 2)
- :func:`relation_questions`: yes/no questions about how two objects stand (chapter 8)
- :func:`follow_ups`: two-turn dialogues, "and the square?" (chapter 6.1)
- :func:`canonical_captions` and :func:`slot_targets`: one fixed caption per scene, and what
  stands at each place, for the captioner and its reading head (chapter 6.1)
- :func:`scratchpad_answers`: relation answers with their reasoning written first (chapter 6.1)
"""

from __future__ import annotations

import torch

from mmlib.data.captions import _change_one_attribute, _true_captions, captions_for
from mmlib.data.questions import _askable
from mmlib.data.reading import question_type
from mmlib.data.scenes import Scenes, _check_scenes
from mmlib.data.world import (
    _CENTRE,
    _TRUE_RELATIONS,
    ANSWERS,
    COLOURS,
    POSITIONS,
    RELATIONS,
    SHAPES,
    SIZES,
)
from mmlib.validate import check_int, check_strings, check_tensor, check_type, require

_X = dict(zip(POSITIONS, _CENTRE[:, 0].tolist(), strict=True))  # x of each place

__all__ = [
    "canonical_captions",
    "caption_match",
    "follow_ups",
    "qa_examples",
    "relation_questions",
    "scratchpad_answers",
    "slot_targets",
]


def qa_examples(scenes: Scenes) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """Flatten the questions of ``scenes`` for visual question answering.

    Returns ``scene_index (M,) int64`` (which image), ``questions`` (M strings) and
    ``answers (M,) int64``, indices into :data:`~mmlib.data.world.ANSWERS`.
    """
    _check_scenes("scenes", scenes)
    index, questions, answers = [], [], []
    for i, pairs in enumerate(scenes.qa):
        for question, answer in pairs:
            index.append(i)
            questions.append(question)
            answers.append(ANSWERS.index(answer))
    return torch.tensor(index, dtype=torch.long), questions, torch.tensor(answers)


def caption_match(
    scenes: Scenes, seed: int = 0, hard: bool = False
) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """The task "is this caption true of this image?".

    Returns ``images (N, 3, 32, 32)`` (those of ``scenes``, in order), N captions and
    ``labels (N,) int64``: 1 for the scene's own caption, 0 for a false one. Exactly ``N // 2``
    captions, at random places, are false. A false caption comes from another scene
    (``hard=False``), or is the scene's own with exactly one attribute, position or relation
    changed (``hard=True``); either way it is checked to be false of the image.
    """
    _check_scenes("scenes", scenes)
    check_int("seed", seed, minimum=0)
    check_type("hard", hard, bool)
    g = torch.Generator().manual_seed(seed)
    n = len(scenes)
    negative = torch.randperm(n, generator=g)[: n // 2]
    labels = torch.ones(n, dtype=torch.long)
    labels[negative] = 0
    captions = list(scenes.captions)
    objects = [
        o[:k] for o, k in zip(scenes.attributes.tolist(), scenes.num_objects.tolist(), strict=True)
    ]
    relations = scenes.relations.tolist()
    for i in negative.tolist():
        true = _true_captions(objects[i])
        for _ in range(100):
            u = torch.rand(3, generator=g).tolist()
            if hard:
                candidate = _change_one_attribute(objects[i], relations[i], u)
            else:
                candidate = scenes.captions[(i + 1 + int(u[0] * (n - 1))) % n]
            if candidate not in true:
                captions[i] = candidate
                break
        else:
            raise ValueError(f"scenes must hold a caption false of scene {i}, found none")
    return scenes.images, captions, labels


def relation_questions(
    scenes: Scenes, seed: int = 0, relations: tuple[str, ...] = RELATIONS
) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """Yes/no questions about two-object scenes: "is the red circle left of the blue square?".

    For each scene, the question asks one of ``relations`` (drawn at random among those whose
    axis separates the two objects) about the objects in a random order, so that about half
    the answers are yes. Objects are named by colour and shape, plus size when that alone tells
    them apart ("is the small red circle above the large red circle?"). Scenes where no asked
    relation applies, or whose two objects share colour, shape and size, are left out.

    Returns ``scene_index (M,) int64`` (which scene each question is about), M questions and
    ``answers (M,) int64``: 1 for yes, 0 for no. Every scene must hold two objects.
    """
    _check_scenes("scenes", scenes)
    check_int("seed", seed, minimum=0)
    if isinstance(relations, str) or not isinstance(relations, (tuple, list)) or not relations:
        raise TypeError(f"relations must be a non-empty tuple of relations, got {relations!r}")
    require(all(r in RELATIONS for r in relations), "relations", f"among {RELATIONS}", relations)
    require(bool((scenes.num_objects == 2).all()), "scenes", "two-object scenes", "some with one")
    g = torch.Generator().manual_seed(seed)
    draws = torch.rand(len(scenes), 2, generator=g).tolist()
    index, questions, answers = [], [], []
    for i, (objects, (u_relation, u_order)) in enumerate(
        zip(scenes.attributes.tolist(), draws, strict=True)
    ):
        first, second = objects
        axes = {r // 2 for r in _TRUE_RELATIONS[first[3]][second[3]]}  # 0: x, 1: y
        apart = [r for r in relations if RELATIONS.index(r) // 2 in axes]
        if first[:3] == second[:3] or not apart:
            continue  # no name tells the objects apart, or no asked relation applies
        asked = apart[int(u_relation * len(apart))]
        a, b = (second, first) if u_order < 0.5 else (first, second)
        holds = RELATIONS.index(asked) in _TRUE_RELATIONS[a[3]][b[3]]
        with_size = first[:2] == second[:2]
        name_a, name_b = (
            "the " + (f"{SIZES[o[2]]} " if with_size else "") + f"{COLOURS[o[1]]} {SHAPES[o[0]]}"
            for o in (a, b)
        )
        index.append(i)
        questions.append(f"is {name_a} {asked} {name_b}?")
        answers.append(int(holds))
    return torch.tensor(index, dtype=torch.long), questions, torch.tensor(answers, dtype=torch.long)


_FOLLOWED = ("what colour is", "what shape is", "what size is", "where is")


def follow_ups(scenes: Scenes, seed: int = 0) -> tuple[torch.Tensor, list[list[tuple[str, str]]]]:
    """Two-turn dialogues whose second question only makes sense after the first.

    Where a scene has the same kind of question about both of its objects ("what colour is the
    circle?" and "what colour is the square?"), the second becomes "and the square?". One
    dialogue per such pair, the object asked about first drawn at random from ``seed``.
    Returns ``scene_index (M,) int64`` and M dialogues ``[(q1, a1), ("and the square?", a2)]``.
    """
    _check_scenes("scenes", scenes)
    check_int("seed", seed, minimum=0)
    flips = torch.rand(len(scenes), len(_FOLLOWED), generator=torch.Generator().manual_seed(seed))
    index, dialogues = [], []
    for i, pairs in enumerate(scenes.qa):
        for k, opening in enumerate(_FOLLOWED):
            asked = [(q, a) for q, a in pairs if q.startswith(opening + " ")]
            if len(asked) != 2:
                continue
            first, second = asked if flips[i, k] < 0.5 else asked[::-1]
            reference = second[0][len(opening) + 1 :]  # "the square?"
            index.append(i)
            dialogues.append([first, (f"and {reference}", second[1])])
    return torch.tensor(index, dtype=torch.long), dialogues


def canonical_captions(scenes: Scenes) -> list[str]:
    """One fixed caption per scene, so that a caption can be predicted exactly.

    :mod:`mmlib.data.scenes` names two objects in a random order with a random true relation
    ("a red circle left of a blue square" or "a blue square right of a red circle"). Here the
    object further left comes first with "left of"; a top/bottom pair is "<top> above <bottom>".
    """
    _check_scenes("scenes", scenes)
    attributes = scenes.attributes.clone()
    relations = scenes.relations.clone()
    for i in (scenes.num_objects == 2).nonzero().squeeze(1).tolist():
        a, b = (POSITIONS[p] for p in attributes[i, :, 3].tolist())
        if {a, b} == {"top", "bottom"}:
            swap, relations[i] = a == "bottom", RELATIONS.index("above")
        else:
            swap, relations[i] = _X[a] > _X[b], RELATIONS.index("left of")
        if swap:
            attributes[i] = attributes[i].flip(0)
    return captions_for(attributes, scenes.num_objects, relations)


def slot_targets(attributes: torch.Tensor) -> torch.Tensor:
    """What stands at each of the 4 positions: ``attributes (N, 2, 4)`` (as in ``Scenes``) ->
    ``(N, 4, 3) int64`` [shape, colour, size] + 1 per position, 0 where the position is empty."""
    check_tensor("attributes", attributes, dtype="integer", shape=(None, 2, 4))
    slots = torch.zeros(
        len(attributes), len(POSITIONS), 3, dtype=torch.long, device=attributes.device
    )
    for k in range(2):
        rows = (attributes[:, k, 0] >= 0).nonzero().squeeze(1)
        slots[rows, attributes[rows, k, 3]] = attributes[rows, k, :3] + 1
    return slots


def scratchpad_answers(
    scenes: Scenes, scene_index: torch.Tensor, questions: list[str], answers: list[str]
) -> list[str]:
    """Answers with their reasoning written out first: a *scratchpad* (Nye et al., 2021).

    The answer to a relation question becomes the place of the first object it names, the
    place of the second, then the answer itself: "is the red circle left of the blue square?"
    -> ``"left right yes"``. Every other answer is returned as it is. ``scene_index (M,)`` and
    the M ``questions`` are as :func:`qa_examples` gives them; ``answers`` are M words.
    """
    _check_scenes("scenes", scenes)
    check_tensor("scene_index", scene_index, dtype="integer", shape=(None,))
    questions, answers = check_strings("questions", questions), check_strings("answers", answers)
    sizes = (len(scene_index), len(questions), len(answers))
    require(len(set(sizes)) == 1, "scene_index, questions and answers", "one length", sizes)
    if sizes[0]:
        low, high = int(scene_index.min()), int(scene_index.max())
        require(low >= 0 and high < len(scenes), "scene_index", f"in [0, {len(scenes)})", high)
    out = []
    for i, question, answer in zip(scene_index.tolist(), questions, answers, strict=True):
        if question_type(question) != "relation":
            out.append(answer)
            continue
        objects = scenes.attributes[i, : scenes.num_objects[i]].tolist()
        names = [name for _, name in _askable(tuple(tuple(o[:3]) for o in objects))]
        order = [
            (a, b)
            for a, b in ((0, 1), (1, 0))
            if len(objects) == 2 and question.startswith(f"is {names[a]} ")
            and question.endswith(f" {names[b]}?")
        ]  # fmt: skip
        require(len(order) == 1, f"questions[{len(out)}]", "about its scene's objects", question)
        first, second = (POSITIONS[objects[k][3]] for k in order[0])
        out.append(f"{first} {second} {answer}")
    return out

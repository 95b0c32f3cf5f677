"""Object hallucination, measured as POPE measures it (Li et al., 2023).

POPE (Polling-based Object Probing Evaluation) asks a vision-language model yes/no questions,
"is there a <object> in the image?", half about objects that are in the picture and half about
objects that are not, and reports accuracy, precision, recall, F1 and the share of "yes"
answers. How the absent objects are chosen decides how hard the probe is: POPE samples them at
random, among the most frequent objects of the dataset ("popular"), and among the objects that
most often appear *together with* the ones present ("adversarial").

Here the objects are the shapes world's colour-shape pairs and the question is the one the
dialogue model was trained on, "is there a red circle?". Every seen pair is drawn equally
often, so "popular" would be the same as random; the nearest thing to POPE's co-occurrence is
an absent object that *shares a word* with one that is there (a red square beside a red circle).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmlib.data.questions import _absent_pairs, _exists_question
from mmlib.data.scenes import Scenes, _check_scenes
from mmlib.validate import check_choice, check_int, check_string_pairs, require

__all__ = ["SAMPLINGS", "probe_questions", "yes_no_scores"]

#: How the absent object of each probe pair is drawn.
SAMPLINGS = ("random", "adversarial")


def _absent_choices(present: list[tuple[int, int]], sampling: str) -> list[tuple[int, int]]:
    """The colour-shape pairs that are not in the picture; for "adversarial", only those that
    share a colour or a shape with one that is."""
    absent = _absent_pairs(present)
    if sampling == "adversarial":
        absent = [(c, s) for c, s in absent if any(c == pc or s == ps for pc, ps in present)]
    return absent


def probe_questions(
    scenes: Scenes, sampling: str = "random", seed: int = 0
) -> tuple[torch.Tensor, list[str], list[str]]:
    """Two yes/no probes per scene: "is there a <colour> <shape>?" about one object that is in
    it (answer "yes") and one that is not (answer "no"), the absent one drawn by ``sampling``
    (:data:`SAMPLINGS`) from a generator seeded with ``seed``.

    Returns ``scene_index (2N,) int64``, 2N questions and 2N answers, present then absent for
    each scene in turn.
    """
    _check_scenes("scenes", scenes)
    check_choice("sampling", sampling, SAMPLINGS)
    check_int("seed", seed, minimum=0)
    draws = torch.rand(len(scenes), 2, generator=torch.Generator().manual_seed(seed)).tolist()
    index, questions, answers = [], [], []
    for i, (u_present, u_absent) in enumerate(draws):
        n = int(scenes.num_objects[i])
        present = sorted({(c, s) for s, c in scenes.attributes[i, :n, :2].tolist()})
        absent = _absent_choices(present, sampling)
        for pair, u, answer in ((present, u_present, "yes"), (absent, u_absent, "no")):
            colour, shape = pair[int(u * len(pair))]
            index.append(i)
            questions.append(_exists_question(colour, shape))  # the question trained on
            answers.append(answer)
    return torch.tensor(index, dtype=torch.long), questions, answers


def yes_no_scores(said: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    """POPE's five numbers for answers ``said`` against ``truth`` ("yes" or "no" each):
    accuracy; precision (the share of "yes" answers that are right), recall (the share of
    present objects confirmed) and their harmonic mean F1, with "yes" as the positive class;
    and the yes-rate, the share of answers that are "yes". As in POPE, any answer other than
    "yes" counts as "no". Counted here rather than with scikit-learn, whose import alone takes
    about a second on the book's machines; the tests check them against scikit-learn's."""
    said, truth = check_string_pairs("said", said, "truth", truth)
    wrong = sorted(set(truth) - {"yes", "no"})
    require(not wrong, "truth", 'only "yes" and "no"', wrong)
    got = [answer == "yes" for answer in said]
    want = [answer == "yes" for answer in truth]
    hits = sum(g and w for g, w in zip(got, want, strict=True))  # "yes" to an object there
    precision = hits / max(sum(got), 1)
    recall = hits / max(sum(want), 1)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {
        "accuracy": sum(g == w for g, w in zip(got, want, strict=True)) / len(want),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes-rate": sum(got) / len(got),
    }

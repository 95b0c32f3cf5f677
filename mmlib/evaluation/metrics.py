"""Metrics the chapters report: classification accuracy, retrieval recall@k, and the variety
of generated samples.

The scores (accuracy, recall@k, variety) are plain Python floats; every function checks its
inputs first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from torch import nn

from mmlib.validate import (
    check_int,
    check_same_batch,
    check_string_pairs,
    check_tensor,
    check_type,
    require,
)

__all__ = [
    "accuracy",
    "best_threshold",
    "count_parameters",
    "question_prior",
    "recall_at_k",
    "mean_pairwise_distance",
    "variety",
]

_KINDS = {1: "integer", 2: "float"}  # dtypes of accuracy's (N,) predictions, (N, C) logits


@torch.no_grad()
def accuracy(logits_or_preds: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose prediction equals the target.

    ``logits_or_preds``: ``(N, C) float`` scores (the argmax is the prediction) or
    ``(N,) integer`` predicted classes. ``targets``: ``(N,) integer`` class indices.
    """
    targets = check_tensor("targets", targets, ndim=1, dtype="integer")
    scores = logits_or_preds
    ndim = check_tensor("logits_or_preds", scores).ndim
    require(ndim in (1, 2), "logits_or_preds", "(N, C) float logits or (N,) predictions", scores)
    check_tensor("logits_or_preds", scores, dtype=_KINDS[ndim], finite=True)
    check_same_batch(logits_or_preds=scores, targets=targets)
    if ndim == 2:
        _check_indices("targets", targets, scores.shape[1], "class indices")
    preds = scores.argmax(dim=1) if ndim == 2 else scores
    return (preds == targets.to(preds.device)).float().mean().item()


def _check_indices(name: str, indices: torch.Tensor, size: int, what: str) -> None:
    """Check that every entry of ``indices`` is in ``[0, size)`` (it scans them all)."""
    low, high = int(indices.min()), int(indices.max())
    require(low >= 0 and high < size, name, f"{what} in [0, {size})", f"values {low} to {high}")


@torch.no_grad()
def recall_at_k(similarity: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    """Fraction of queries with at least one correct gallery item among their top ``k``.

    ``similarity``: ``(Q, G) float``, higher means closer (e.g. text-by-image cosine
    similarities; pass ``similarity.T`` for the other direction). ``targets``: ``(Q,) integer``
    index of each query's single match in ``[0, G)``, or ``(Q, G) bool`` mask of every match
    (each query needs at least one). ``k`` in ``[1, G]``.
    """
    similarity = check_tensor("similarity", similarity, ndim=2, dtype="float", finite=True)
    num_queries, gallery = similarity.shape
    k = check_int("k", k, minimum=1)
    require(k <= gallery, "k", f"<= the gallery size {gallery}", k)
    if getattr(targets, "ndim", 1) == 1:  # else a (Q, G) mask; check_tensor rejects the rest
        check_tensor("targets", targets, shape=(num_queries,), dtype="integer")
        _check_indices("targets", targets, gallery, "gallery indices")
        positives = torch.zeros_like(similarity, dtype=torch.bool)
        positives[torch.arange(num_queries), targets.to(similarity.device)] = True
    else:
        check_tensor("targets", targets, shape=(num_queries, gallery), dtype=torch.bool)
        positives = targets.to(similarity.device)
        empty = (~positives.any(dim=1)).nonzero().flatten().tolist()[:5]  # queries with none
        require(not empty, "targets", "a mask with a match in each row", f"none in rows {empty}")
    top = similarity.topk(k, dim=1).indices  # (Q, k)
    hit = positives.gather(1, top).any(dim=1)  # (Q,)
    return hit.float().mean().item()


def count_parameters(module: nn.Module) -> int:
    """How many numbers ``module`` learns: the sum of ``p.numel()`` over its parameters."""
    check_type("module", module, nn.Module, "torch.nn.Module")
    return sum(p.numel() for p in module.parameters())


def best_threshold(scores: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """The score threshold that best separates matches from non-matches: ``(threshold, acc)``.

    ``scores (N,) float`` (higher = more likely a match) and ``labels (N,) int`` in {0, 1}.
    A pair is called a match when ``score >= threshold``; ``acc`` is the accuracy that rule
    gets on these same pairs. Every distinct score is tried, and ``inf`` (no pair a match);
    of equally good thresholds the highest wins. The right calls are counted exactly, in
    integers (``sklearn.metrics.roc_curve`` gives the same candidates, but importing
    scikit-learn took a page longer than the count).
    """
    check_tensor("scores", scores, ndim=1, dtype="float", finite=True)
    check_tensor("labels", labels, ndim=1, dtype="integer")
    check_same_batch(scores=scores, labels=labels)
    values = sorted(labels.unique().tolist())
    require(values == [0, 1], "labels", "0s and 1s, with both present", values)
    ranked, order = scores.detach().cpu().double().sort(descending=True)
    y = labels.cpu()[order].long()
    true_yes = y.cumsum(0)  # matches called a match when the threshold is ranked[k]
    false_yes = (1 - y).cumsum(0)
    negatives = len(y) - int(y.sum())
    last_of_tie = torch.ones(len(y), dtype=torch.bool)
    last_of_tie[:-1] = ranked[1:] != ranked[:-1]  # a threshold counts all pairs tied with it
    thresholds = torch.cat([ranked.new_tensor([float("inf")]), ranked[last_of_tie]])
    correct = torch.cat(
        [y.new_tensor([negatives]), true_yes[last_of_tie] + negatives - false_yes[last_of_tie]]
    )
    best = int(correct.argmax())  # the first of equal maxima: the highest threshold
    return float(thresholds[best]), float(correct[best]) / len(y)


def question_prior(questions: Sequence[str], answers: Sequence[str]) -> dict[str, str]:
    """A blind baseline: for each distinct question text, its most common answer.

    ``questions`` and ``answers``: M training pairs of str. Returns ``{question: answer}``;
    ties go to the answer met first. A model that answers no better than this on a kind of
    question has not learned to look at the image for it.
    """
    questions, answers = check_string_pairs("questions", questions, "answers", answers)
    counts: dict[str, Counter] = {}
    for question, answer in zip(questions, answers, strict=True):
        counts.setdefault(question, Counter())[answer] += 1
    return {question: c.most_common(1)[0][0] for question, c in counts.items()}


def _check_groups(name: str, groups: object) -> torch.Tensor:
    check_tensor(name, groups, dtype="float")
    require(groups.ndim >= 3 and groups.shape[1] >= 2, name, "(C, N, ...) with N >= 2", groups)
    return groups


def mean_pairwise_distance(groups: torch.Tensor) -> torch.Tensor:
    """For ``groups (C, N, ...)``, C groups of N samples each (N >= 2), the mean Euclidean
    distance between two different samples of a group: ``(C,)``."""
    flat = _check_groups("groups", groups).detach().flatten(2).float()  # (C, N, D)
    n = flat.shape[1]
    return torch.cdist(flat, flat).sum((1, 2)) / (n * (n - 1))  # the diagonal adds 0


def variety(samples: torch.Tensor, reference: torch.Tensor) -> float:
    """How varied a generator's samples are, against real data: the mean over groups of
    ``mean_pairwise_distance(samples) / mean_pairwise_distance(reference)``.

    ``samples (C, N, ...)``: N samples for each of C prompts; ``reference (C, M, ...)``: M real
    examples of each prompt, of the same shape per sample. 1 means two samples of a prompt
    differ as much as two real examples of it do; 0 means every sample of a prompt is the same.
    Samples that miss the prompt can be varied too, so read it beside a fidelity measure.
    """
    _check_groups("samples", samples)
    _check_groups("reference", reference)
    require(
        reference.ndim == samples.ndim
        and reference.shape[0] == samples.shape[0]
        and reference.shape[2:] == samples.shape[2:],
        "reference",
        f"(C, M, ...) with C and the sample shape of samples {tuple(samples.shape)}",
        reference,
    )
    real = mean_pairwise_distance(reference)
    require(
        bool((real > 0).all()),
        "reference",
        "groups whose examples are not all the same",
        "a group of identical examples",
    )
    return float((mean_pairwise_distance(samples).cpu() / real.cpu()).mean())

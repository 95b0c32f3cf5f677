"""Metrics the chapters report: classification accuracy and retrieval recall@k.

Both return plain Python floats in ``[0, 1]`` and check their inputs first.
"""

from __future__ import annotations

import torch

from mmlib.validate import check_int, check_tensor, describe

__all__ = ["accuracy", "recall_at_k"]


@torch.no_grad()
def accuracy(logits_or_preds: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose prediction equals the target.

    ``logits_or_preds``: ``(N, C) float`` scores (the argmax is the prediction) or
    ``(N,) integer`` predicted classes. ``targets``: ``(N,) integer`` class indices.
    """
    targets = check_tensor("targets", targets, ndim=1, dtype="integer")
    check_tensor("logits_or_preds", logits_or_preds)
    if logits_or_preds.ndim == 2:
        check_tensor("logits_or_preds", logits_or_preds, dtype="float", finite=True)
        num_classes = logits_or_preds.shape[1]
        if int(targets.min()) < 0 or int(targets.max()) >= num_classes:
            raise ValueError(
                f"targets must hold class indices in [0, {num_classes}) to match logits "
                f"(N, {num_classes}), got values from {int(targets.min())} to {int(targets.max())}"
            )
        preds = logits_or_preds.argmax(dim=1)
    elif logits_or_preds.ndim == 1:
        preds = check_tensor("logits_or_preds", logits_or_preds, dtype="integer")
    else:
        raise ValueError(
            "logits_or_preds must be (N, C) float logits or (N,) integer predictions, "
            f"got {describe(logits_or_preds)}"
        )
    if preds.shape[0] != targets.shape[0]:
        raise ValueError(
            f"logits_or_preds and targets must have the same N, got "
            f"{describe(logits_or_preds)} and {describe(targets)}"
        )
    return (preds == targets.to(preds.device)).float().mean().item()


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
    if k > gallery:
        raise ValueError(f"k must be <= the gallery size {gallery} (similarity (Q, G)), got {k}")
    check_tensor("targets", targets)
    if targets.ndim == 1:
        check_tensor("targets", targets, shape=(num_queries,), dtype="integer")
        if int(targets.min()) < 0 or int(targets.max()) >= gallery:
            raise ValueError(
                f"targets must hold gallery indices in [0, {gallery}), got values from "
                f"{int(targets.min())} to {int(targets.max())}"
            )
        positives = torch.zeros_like(similarity, dtype=torch.bool)
        positives[torch.arange(num_queries), targets.to(similarity.device)] = True
    elif targets.ndim == 2:
        positives = check_tensor(
            "targets", targets, shape=(num_queries, gallery), dtype=torch.bool
        ).to(similarity.device)
        empty = (~positives.any(dim=1)).nonzero().flatten()
        if len(empty):
            raise ValueError(
                f"targets must mark at least one match per query, got none for "
                f"{len(empty)} queries (first: row {int(empty[0])})"
            )
    else:
        raise ValueError(
            f"targets must be (Q,) integer indices or a (Q, G) bool mask with Q={num_queries}, "
            f"G={gallery}, got {describe(targets)}"
        )
    top = similarity.topk(k, dim=1).indices  # (Q, k)
    hit = positives.gather(1, top).any(dim=1)  # (Q,)
    return hit.float().mean().item()

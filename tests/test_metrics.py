"""Accuracy, recall@k and the variety of samples agree with hand-counted answers and reject
malformed input."""

import pytest
import torch

from mmlib.evaluation.metrics import accuracy, mean_pairwise_distance, recall_at_k, variety
from tests.bad_input import raises_naming


def test_accuracy_from_logits_and_from_predictions():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 1.0, 5.0], [4.0, 0.0, 0.0]])
    targets = torch.tensor([0, 1, 0, 1])  # argmax is [0, 1, 2, 0]: two of four right
    assert accuracy(logits, targets) == 0.5
    assert accuracy(torch.tensor([0, 1, 2, 0]), targets) == 0.5
    assert accuracy(targets, targets) == 1.0


@pytest.mark.parametrize(
    "preds, targets, error, argument",
    [
        (torch.zeros(3, 2), [0, 1, 0], TypeError, "targets"),
        (torch.zeros(3, 2), torch.zeros(3), TypeError, "targets"),
        (torch.zeros(3, 2), torch.zeros(3, 1, dtype=torch.long), ValueError, "targets"),
        (torch.zeros(3, 2), torch.tensor([0, 2, 1]), ValueError, "targets"),
        (torch.zeros(3, 2), torch.tensor([0, -1, 1]), ValueError, "targets"),
        (
            torch.zeros(3, 2, dtype=torch.long),
            torch.zeros(3, dtype=torch.long),
            TypeError,
            "logits_or_preds",
        ),
        (
            torch.full((3, 2), float("nan")),
            torch.zeros(3, dtype=torch.long),
            ValueError,
            "logits_or_preds",
        ),
        (
            torch.zeros(3),
            torch.zeros(3, dtype=torch.long),
            TypeError,
            "logits_or_preds",
        ),
        (
            torch.zeros(3, 2, 1),
            torch.zeros(3, dtype=torch.long),
            ValueError,
            "logits_or_preds",
        ),
        (torch.zeros(4, 2), torch.zeros(3, dtype=torch.long), ValueError, "logits_or_preds"),
        ("logits", torch.zeros(3, dtype=torch.long), TypeError, "logits_or_preds"),
        (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), ValueError, "targets"),
        (torch.zeros(0, 2), torch.zeros(3, dtype=torch.long), ValueError, "logits_or_preds"),
    ],
)
def test_accuracy_rejects_bad_input(preds, targets, error, argument):
    with raises_naming(error, argument):
        accuracy(preds, targets)


def test_recall_at_k_with_indices_and_with_a_mask():
    similarity = torch.tensor(
        [
            [0.9, 0.1, 0.0, 0.2],  # match 0 ranked 1st
            [0.8, 0.1, 0.7, 0.3],  # match 1 ranked 4th
            [0.1, 0.9, 0.5, 0.0],  # match 2 ranked 2nd
        ]
    )
    targets = torch.tensor([0, 1, 2])
    assert recall_at_k(similarity, targets, k=1) == pytest.approx(1 / 3)
    assert recall_at_k(similarity, targets, k=2) == pytest.approx(2 / 3)
    assert recall_at_k(similarity, targets, k=4) == 1.0
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[0, 0] = mask[1, 1] = mask[1, 2] = mask[2, 2] = True  # query 1 also matches item 2
    assert recall_at_k(similarity, mask, k=1) == pytest.approx(1 / 3)
    assert recall_at_k(similarity, mask, k=2) == 1.0
    # The other direction (gallery items as queries) is the transpose.
    assert recall_at_k(similarity.T[:3, :], torch.tensor([0, 2, 1]), k=1) == 1.0


@pytest.mark.parametrize(
    "similarity, targets, k, error, argument",
    [
        (torch.zeros(2, 3), torch.tensor([0, 1]), 0, ValueError, "k"),
        (torch.zeros(2, 3), torch.tensor([0, 1]), 4, ValueError, "k"),
        (torch.zeros(2, 3), torch.tensor([0, 1]), 1.0, TypeError, "k"),
        (torch.zeros(3), torch.tensor([0, 1]), 1, ValueError, "similarity"),
        (
            torch.zeros(2, 3, dtype=torch.long),
            torch.tensor([0, 1]),
            1,
            TypeError,
            "similarity",
        ),
        (torch.full((2, 3), float("inf")), torch.tensor([0, 1]), 1, ValueError, "similarity"),
        (torch.zeros(2, 3), [0, 1], 1, TypeError, "targets"),
        (torch.zeros(2, 3), torch.tensor([0, 1, 2]), 1, ValueError, "targets"),
        (torch.zeros(2, 3), torch.tensor([0.0, 1.0]), 1, TypeError, "targets"),
        (torch.zeros(2, 3), torch.tensor([0, 3]), 1, ValueError, "targets"),
        (torch.zeros(2, 3), torch.tensor([0, -1]), 1, ValueError, "targets"),
        (torch.zeros(2, 3), torch.ones(2, 2, dtype=torch.bool), 1, ValueError, "targets"),
        (torch.zeros(2, 3), torch.ones(2, 3), 1, TypeError, "targets"),
        (
            torch.zeros(2, 3),
            torch.tensor([[True, False, False], [False] * 3]),
            1,
            ValueError,
            "targets",
        ),
        (
            torch.zeros(2, 3),
            torch.zeros(2, 3, 1, dtype=torch.bool),
            1,
            ValueError,
            "targets",
        ),
    ],
)
def test_recall_at_k_rejects_bad_input(similarity, targets, k, error, argument):
    with raises_naming(error, argument):
        recall_at_k(similarity, targets, k)


def test_mean_pairwise_distance_by_hand_and_against_a_loop():
    groups = torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]])  # (2, 2, 2)
    assert mean_pairwise_distance(groups).tolist() == [5.0, 0.0]
    three = torch.randn(4, 3, 2, 5, generator=torch.Generator().manual_seed(0))  # (C, N, ...)
    looped = [
        sum(float((g[i] - g[j]).norm()) for i in range(3) for j in range(3) if i != j) / 6
        for g in three
    ]
    assert mean_pairwise_distance(three).tolist() == pytest.approx(looped, rel=1e-5)


def test_variety_is_one_against_itself_zero_for_copies_and_scales_with_spread():
    real = torch.randn(3, 8, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    assert variety(real, real) == pytest.approx(1.0)
    copies = real[:, :1].expand(3, 5, 3, 4, 4)  # every sample of a prompt the same
    assert variety(copies, real) == 0.0
    squeezed = real.mean(1, keepdim=True) + 0.5 * (real - real.mean(1, keepdim=True))
    assert variety(squeezed, real) == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize(
    "samples, reference, error, argument",
    [
        ([[0.0, 1.0]], torch.rand(2, 2, 3), TypeError, "samples"),
        (torch.rand(2, 2, 3), "real", TypeError, "reference"),
        (torch.zeros(2, 2, 3, dtype=torch.long), torch.rand(2, 2, 3), TypeError, "samples"),
        (torch.rand(2, 1, 3), torch.rand(2, 2, 3), ValueError, "samples"),
        (torch.rand(2, 2, 3), torch.rand(2, 1, 3), ValueError, "reference"),
        (torch.rand(2, 3), torch.rand(2, 3), ValueError, "samples"),
        (torch.rand(2, 2, 3), torch.rand(3, 2, 3), ValueError, "reference"),
        (torch.rand(2, 2, 3), torch.rand(2, 2, 4), ValueError, "reference"),
        (torch.rand(2, 2, 3), torch.ones(2, 2, 3), ValueError, "reference"),
    ],
)
def test_variety_rejects_bad_input(samples, reference, error, argument):
    with raises_naming(error, argument):
        variety(samples, reference)

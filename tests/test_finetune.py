"""Few-label fine-tuning helpers: subsets, batched prediction, classifier fitting, zero-shot."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmlib.training.finetune import fit_classifier, per_class_subset, predict, zero_shot_scores
from tests.bad_input import raises_naming


def test_per_class_subset_is_balanced_nested_and_deterministic():
    labels = torch.arange(60) % 3
    small = per_class_subset(labels, 4, seed=1)
    large = per_class_subset(labels, 10, seed=1)
    assert small.shape == (12,) and small.dtype == torch.int64
    assert torch.equal(labels[small].bincount(), torch.tensor([4, 4, 4]))
    assert set(small.tolist()) <= set(large.tolist())
    assert torch.equal(small, per_class_subset(labels, 4, seed=1))
    assert not torch.equal(large, per_class_subset(labels, 10, seed=2))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"labels": torch.zeros(4)}, TypeError, "labels"),
        ({"labels": torch.tensor([0, -1])}, ValueError, "labels"),
        ({"per_class": 0}, ValueError, "per_class"),
        ({"per_class": 3}, ValueError, "per_class"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_per_class_subset_rejects_bad_input(kwargs, error, name):
    arguments = {"labels": torch.tensor([0, 0, 1, 1]), "per_class": 1} | kwargs
    with raises_naming(error, name):
        per_class_subset(**arguments)


def test_predict_batches_restores_mode_and_accepts_methods():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5))
    x = torch.randn(11, 5)
    model.train()
    out = predict(model, x, batch_size=4)
    assert out.shape == (11, 3) and not out.requires_grad
    assert model.training  # restored
    with torch.no_grad():
        assert torch.allclose(out, model[0](x))  # eval mode: dropout off
    assert torch.allclose(predict(model[0].forward, x, batch_size=3), out)
    assert torch.allclose(predict(lambda t: t * 2, x), x * 2)


@pytest.mark.parametrize(
    ("fn", "inputs", "kwargs", "error", "name"),
    [
        ("not callable", torch.zeros(2, 2), {}, TypeError, "fn"),
        (nn.Identity(), [1, 2], {}, TypeError, "inputs"),
        (nn.Identity(), torch.zeros(2, 2), {"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_predict_rejects_bad_input(fn, inputs, kwargs, error, name):
    with raises_naming(error, name):
        predict(fn, inputs, **kwargs)


def _blobs(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    return centres[labels] + 0.5 * torch.randn(n, 2, generator=g), labels


def test_fit_classifier_learns_and_records_curves():
    x, y = _blobs()
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    history = fit_classifier(
        model,
        x,
        y,
        steps=60,
        batch_size=32,
        lr=5e-2,
        device="cpu",
        eval_sets={"train": (x, y), "test": _blobs(seed=1)},
        eval_every=20,
        progress=False,
    )
    assert len(history.loss) == 60 and history.steps == [20, 40, 60]
    assert history.final("test accuracy") > 0.95
    assert history.metrics[-1]["train loss"] < history.metrics[0]["train loss"]
    with torch.no_grad():
        assert history.final("train loss") == pytest.approx(F.cross_entropy(model(x), y).item())


def test_fit_classifier_is_deterministic():
    x, y = _blobs()
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Linear(2, 3)
        fit_classifier(model, x, y, steps=5, device="cpu", seed=3, progress=False)
        weights.append(model.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"model": "linear"}, TypeError, "model"),
        ({"labels": torch.zeros(120)}, TypeError, "labels"),
        ({"labels": torch.zeros(7, dtype=torch.long)}, ValueError, "labels"),
        ({"inputs": [[0.0, 1.0]]}, TypeError, "inputs"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"eval_sets": [1]}, TypeError, "eval_sets"),
        ({"eval_sets": {"test": torch.zeros(3)}}, TypeError, "eval_sets"),
        ({"eval_sets": {"test": (torch.zeros(3, 2), torch.zeros(3))}}, TypeError, "labels"),
        ({"eval_sets": {"test": (torch.zeros(3, 2), torch.zeros(4).long())}}, ValueError, "labels"),
        ({"eval_sets": {"test": ([1], torch.zeros(1).long())}}, TypeError, "inputs"),
        ({"eval_sets": {3: (torch.zeros(3, 2), torch.zeros(3).long())}}, TypeError, "eval_sets"),
        ({"steps": 0}, ValueError, "steps"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"device": "tpu"}, ValueError, "device"),
    ],
)
def test_fit_classifier_rejects_bad_input(kwargs, error, name):
    x, y = _blobs()
    arguments = {"model": nn.Linear(2, 3), "inputs": x, "labels": y, "steps": 1} | kwargs
    with raises_naming(error, name):
        fit_classifier(**({"device": "cpu", "progress": False} | arguments))


def test_zero_shot_scores_take_the_best_prompt_of_each_class():
    images = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=1)
    prompts = F.normalize(torch.tensor([[1.0, 0.1], [0.2, 1.0], [-1.0, 0.0], [0.9, 0.9]]), dim=1)
    classes = torch.tensor([0, 1, 1, 0])
    scores = zero_shot_scores(images, prompts, classes, 2)
    similarity = images @ prompts.T
    expected = torch.stack([similarity[:, [0, 3]].amax(1), similarity[:, [1, 2]].amax(1)], 1)
    assert torch.allclose(scores, expected)
    assert scores.argmax(1).tolist() == [0, 1, 0]


def test_zero_shot_scores_mean_ensemble_averages_the_prompts_of_a_class():
    """CLIP's prompt ensembling: average the unit prompt embeddings, renormalise, compare."""
    images = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=1)
    prompts = F.normalize(torch.tensor([[1.0, 0.1], [0.2, 1.0], [-1.0, 0.0], [0.9, 0.9]]), dim=1)
    classes = torch.tensor([0, 1, 1, 0])
    scores = zero_shot_scores(images, prompts, classes, 2, ensemble="mean")
    means = torch.stack([prompts[[0, 3]].mean(0), prompts[[1, 2]].mean(0)])
    expected = images @ F.normalize(means, dim=1).T
    assert torch.allclose(scores, expected)
    # the two can disagree: class 0 has a prompt equal to the image, but its two prompts
    # average to a direction further from it than class 1's one prompt
    image = torch.tensor([[1.0, 0.0]])
    two = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    owners = torch.tensor([0, 0, 1])
    assert zero_shot_scores(image, two, owners, 2).argmax(1).item() == 0
    assert zero_shot_scores(image, two, owners, 2, ensemble="mean").argmax(1).item() == 1
    # prompts that are not unit length are normalised first, as CLIP does
    assert torch.allclose(
        zero_shot_scores(images, 3 * prompts, classes, 2, ensemble="mean"), expected
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"image_embeddings": torch.zeros(3)}, ValueError, "image_embeddings"),
        ({"image_embeddings": torch.full((3, 2), float("nan"))}, ValueError, "image_embeddings"),
        ({"prompt_embeddings": torch.zeros(4, 5)}, ValueError, "prompt_embeddings"),
        ({"prompt_classes": torch.tensor([0.0, 1, 1, 0])}, TypeError, "prompt_classes"),
        ({"prompt_classes": torch.tensor([0, 1, 1])}, ValueError, "prompt_classes"),
        ({"prompt_classes": torch.tensor([0, 1, 2, 0])}, ValueError, "prompt_classes"),
        ({"prompt_classes": torch.tensor([0, -1, 1, 0])}, ValueError, "prompt_classes"),
        ({"num_classes": 3}, ValueError, "prompt_classes"),
        ({"num_classes": 0}, ValueError, "num_classes"),
        ({"ensemble": "median"}, ValueError, "ensemble"),
    ],
)
def test_zero_shot_scores_reject_bad_input(kwargs, error, name):
    arguments = {
        "image_embeddings": torch.zeros(3, 2),
        "prompt_embeddings": torch.zeros(4, 2),
        "prompt_classes": torch.tensor([0, 1, 1, 0]),
        "num_classes": 2,
    } | kwargs
    with raises_naming(error, name):
        zero_shot_scores(**arguments)

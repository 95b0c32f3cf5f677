"""Few-label fine-tuning: pick a few labels, fit a classifier, predict, classify by prompts.

The second step of "pretrain, then fine-tune": a pretrained encoder meets a task with a handful
of labels. :func:`per_class_subset` draws the labels (nested: the 10 examples per class are
among the 30), :func:`fit_classifier` trains any classifier with :func:`mmlib.training.loop.train`
and records train/validation curves, :func:`predict` runs a model or an encoder over a large
tensor in batches, and :func:`zero_shot_scores` classifies with text prompts and no labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import NoneType

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.device import get_device
from mmlib.evaluation.metrics import accuracy
from mmlib.modes import evaluating
from mmlib.training.batches import TensorBatches
from mmlib.training.history import History
from mmlib.training.loop import train
from mmlib.validate import (
    check_choice,
    check_int,
    check_tensor,
    check_type,
    describe,
    require,
)

__all__ = ["fit_classifier", "per_class_subset", "predict", "zero_shot_scores"]


def per_class_subset(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` examples of each class in ``labels (N,) int``: ``(C * per_class,)``.

    Classes are ``0 .. labels.max()``; each must have ``per_class`` examples. The examples come
    from one shuffle per ``seed``, so a smaller ``per_class`` picks a subset of a larger one.
    Indices are grouped by class, in class order.
    """
    check_tensor("labels", labels, ndim=1, dtype="integer")
    check_int("per_class", per_class, minimum=1)
    check_int("seed", seed, minimum=0)
    require(int(labels.min()) >= 0, "labels", "class indices >= 0", int(labels.min()))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    labels = labels.cpu()
    picked = []
    for c in range(int(labels.max()) + 1):
        rows = order[labels[order] == c]
        given = f"{per_class} but class {c} has {len(rows)}"
        require(len(rows) >= per_class, "per_class", "<= the examples of every class", given)
        picked.append(rows[:per_class])
    return torch.cat(picked)


def _owner(fn: Callable) -> nn.Module | None:
    """The module behind ``fn``: the module itself, or the one a bound method belongs to."""
    module = fn if isinstance(fn, nn.Module) else getattr(fn, "__self__", None)
    return module if isinstance(module, nn.Module) else None


@torch.no_grad()
def predict(
    fn: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    *,
    batch_size: int = 512,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """``fn`` applied to ``inputs (N, ...)`` in batches, without gradients: ``(N, ...)`` on the CPU.

    ``fn`` is a model, or a method of one such as ``DualEncoder.encode_images``; its module
    runs in eval mode (restored afterwards) on ``device`` (default: where its parameters are).
    """
    check_type("fn", fn, Callable, "model or a callable")
    check_tensor("inputs", inputs)
    check_int("batch_size", batch_size, minimum=1)
    module = _owner(fn)
    if device is None:
        first = next(module.parameters(), None) if module is not None else None
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    with evaluating(module) if module is not None else torch.no_grad():
        outputs = [
            fn(inputs[i : i + batch_size].to(device)).cpu()
            for i in range(0, len(inputs), batch_size)
        ]
    return torch.cat(outputs)


def _check_labelled(where: str, inputs: object, labels: object) -> None:
    """``inputs (N, ...)`` and integer ``labels (N,)``; ``where`` prefixes their names."""
    check_tensor(f"{where}inputs", inputs)
    check_tensor(f"{where}labels", labels, dtype="integer", shape=(len(inputs),))


def _check_fit(inputs: object, labels: object, batch_size: object, eval_sets: object) -> dict:
    """:func:`fit_classifier`'s own checks (``train`` checks the rest); ``eval_sets`` as a dict."""
    _check_labelled("", inputs, labels)
    check_int("batch_size", batch_size, minimum=1)
    check_type("eval_sets", eval_sets, (Mapping, NoneType), "dict name -> (inputs, labels)")
    for name, pair in (eval_sets or {}).items():
        given = f"{name!r}: {describe(pair)}"
        if not (isinstance(name, str) and isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"eval_sets must map str to (inputs, labels), got {given}")
        _check_labelled(f"eval_sets[{name!r}] ", *pair)
    return dict(eval_sets or {})


def fit_classifier(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    device: str | torch.device | None = None,
    seed: int = 0,
    eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    eval_every: int | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` (``inputs (N, ...) -> logits (N, C)``) with cross-entropy on ``labels (N,)``.

    Shuffled batches of ``min(batch_size, N)`` rows, ``steps`` AdamW steps with cosine decay
    (:func:`mmlib.training.loop.train`). ``eval_sets`` maps a name to ``(inputs, labels)``; every
    ``eval_every`` steps and at the end, ``history.metrics`` records ``"<name> loss"`` and
    ``"<name> accuracy"`` for each. ``inputs`` may be images or precomputed features.
    """
    sets = _check_fit(inputs, labels, batch_size, eval_sets)  # model, steps...: train checks
    device = get_device() if device is None else device

    def loss_fn(net, batch):
        x, y = batch
        return F.cross_entropy(net(x), y)

    def eval_fn(net):
        record = {}
        for name, (x, y) in sets.items():
            logits = predict(net, x, device=device)
            record[f"{name} loss"] = F.cross_entropy(logits, y.cpu()).item()
            record[f"{name} accuracy"] = accuracy(logits, y.cpu())
        return record

    batches = TensorBatches(inputs, labels, batch_size=min(batch_size, len(labels)), seed=seed)
    return train(
        model,
        loss_fn,
        batches,
        steps=steps,
        lr=lr,
        weight_decay=weight_decay,
        device=device,
        seed=seed,
        eval_fn=eval_fn if sets else None,
        eval_every=eval_every if sets else None,
        progress=progress,
        desc="fine-tune",
    )


def zero_shot_scores(
    image_embeddings: torch.Tensor,
    prompt_embeddings: torch.Tensor,
    prompt_classes: torch.Tensor,
    num_classes: int,
    ensemble: str = "max",
) -> torch.Tensor:
    """Classify without labels by comparing images with prompts: scores ``(N, num_classes)``.

    ``image_embeddings (N, D)`` and ``prompt_embeddings (P, D)`` are unit-length (as from
    ``DualEncoder.encode_images`` / ``encode_texts``); ``prompt_classes (P,) int`` says which
    class each prompt describes. Every class needs a prompt. ``ensemble`` says how the prompts
    of a class c are combined:

    - ``"max"``: the score of c is the highest cosine similarity between the image and any
      prompt of c: the image's nearest prompt decides (nearest-caption classification);
    - ``"mean"``: CLIP's prompt ensembling (Radford et al. 2021): the prompts' embeddings are
      averaged and the mean renormalised to unit length, and the score is the cosine
      similarity with that one class embedding.
    """
    check_tensor("image_embeddings", image_embeddings, ndim=2, dtype="float", finite=True)
    dim = image_embeddings.shape[1]
    check_tensor("prompt_embeddings", prompt_embeddings, dtype="float", shape=(None, dim))
    num_prompts = len(prompt_embeddings)
    check_tensor("prompt_classes", prompt_classes, dtype="integer", shape=(num_prompts,))
    check_int("num_classes", num_classes, minimum=1)
    check_choice("ensemble", ensemble, ("max", "mean"))
    low, high = int(prompt_classes.min()), int(prompt_classes.max())
    given = f"values from {low} to {high}"
    require(low >= 0 and high < num_classes, "prompt_classes", f"in [0, {num_classes})", given)
    counts = torch.bincount(prompt_classes.cpu(), minlength=num_classes)
    missing = (counts == 0).nonzero().flatten().tolist()
    require(not missing, "prompt_classes", "complete (a prompt per class)", f"none for {missing}")
    prompts = prompt_embeddings.to(image_embeddings)
    if ensemble == "mean":
        owner = prompt_classes.to(prompts.device)
        unit = F.normalize(prompts, dim=1)
        sums = prompts.new_zeros(num_classes, dim).index_add_(0, owner, unit)  # (C, D)
        return image_embeddings @ F.normalize(sums, dim=1).T  # the mean's direction is the sum's
    similarity = image_embeddings @ prompts.T  # (N, P)
    owner = prompt_classes.to(similarity.device)
    scores = similarity.new_full((len(similarity), num_classes), float("-inf"))
    return scores.scatter_reduce(1, owner.expand_as(similarity), similarity, reduce="amax")

"""How chapter 6.1's dialogue model is scored: its captions, and how it reads the scene.

:func:`caption_scores` compares generated captions with reference captions, part by part.
:class:`~mmlib.models.dialogue.VisualDialogueModel`'s encoder learns, in its first stage, to
read at each of the four places the shape, colour and size of what stands there (or
"nothing"); :func:`slot_accuracy` scores those readings against the scenes' true attributes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmlib.data.reading import parse_caption
from mmlib.data.tasks import slot_targets
from mmlib.data.tokenizer import Tokenizer
from mmlib.models.dialogue import VisualDialogueModel
from mmlib.modes import evaluating
from mmlib.validate import check_images, check_string_pairs, check_tensor, check_type, require

__all__ = ["caption_scores", "slot_accuracy"]


@torch.no_grad()
def slot_accuracy(
    model: VisualDialogueModel, images: torch.Tensor, attributes: torch.Tensor
) -> dict[str, float]:
    """How well the auxiliary head of ``model`` reads the objects of the scenes.

    ``images (N, 3, 32, 32)`` and their ``attributes (N, 2, 4)`` (as in ``Scenes``). Returns
    ``{"shape": float, "colour": float, "size": float, "empty": float}``: the fraction of
    occupied places whose attribute is read right, and of empty places read as empty.
    """
    check_type("model", model, VisualDialogueModel)
    check_images("images", images, finite=True)
    check_tensor("attributes", attributes, dtype="integer", shape=(len(images), 2, 4))
    device = next(model.parameters()).device
    with evaluating(model):
        logits = model.attribute_logits(images.to(device))
    wanted = slot_targets(attributes).to(device)  # (N, 4, 3)
    occupied = wanted[..., 0] > 0  # (N, 4)
    scores = {}
    for k, name in enumerate(("shape", "colour", "size")):
        right = logits[k].argmax(-1) == wanted[..., k]
        scores[name] = float(right[occupied].float().mean())
    scores["empty"] = float((logits[0].argmax(-1) == 0)[~occupied].float().mean())
    return scores


def caption_scores(generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Compare generated captions with reference captions, part by part.

    The references are typically :func:`~mmlib.data.tasks.canonical_captions`.

    Returns floats in [0, 1]: ``exact`` (the whole caption matches), ``size``, ``colour`` and
    ``shape`` (fraction of reference objects whose attribute is right in the same slot of the
    generated caption), ``where`` (position or relation right), and ``attributes``, the mean
    over every attribute slot. A caption that does not parse gets every slot wrong.
    """
    generated, references = check_string_pairs("generated", generated, "references", references)
    hits = {"size": [], "colour": [], "shape": [], "where": []}
    exact = []
    for got, want in zip(generated, references, strict=True):
        truth, guess = parse_caption(want), parse_caption(got)
        require(truth is not None, "references", "captions from mmlib.data.scenes", repr(want))
        exact.append(Tokenizer.normalise(got) == Tokenizer.normalise(want))
        objects = guess["objects"] if guess else []
        for k, obj in enumerate(truth["objects"]):
            mine = objects[k] if k < len(objects) else (None, None, None)
            for name, a, b in zip(("size", "colour", "shape"), obj, mine, strict=True):
                hits[name].append(a == b)
        hits["where"].append(guess is not None and guess["where"] == truth["where"])
    scores = {"exact": sum(exact) / len(exact)}
    scores.update({name: sum(h) / len(h) for name, h in hits.items()})
    every = [x for h in hits.values() for x in h]
    scores["attributes"] = sum(every) / len(every)
    return scores

"""An attribute classifier that grades generated images: the "judge".

A generated image for "a small red circle" is correct if a classifier trained on real scenes
reads small, red and circle from it. The judge is a small CNN with one head per attribute of a
single-object scene (shape, colour, size, and position if asked for). It is trained on real
images only, and its own accuracy on real held-out scenes says how far its grades can be trusted.

A classifier over a closed set of answers always answers, and confidently: a pink blob is read
as the nearest colour it knows, purple. The judge can therefore *abstain*:
:meth:`AttributeJudge.calibrate` measures, on real images, the typical colour of each colour
it reads and how far real objects stray from it (the distance that a share ``keep`` of them
stay within), and :meth:`AttributeJudge.abstains` flags images whose object colour lies
farther than that from the colour the judge reads: colours no real scene has.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.data.world import ATTRIBUTES
from mmlib.validate import (
    check_choice,
    check_float,
    check_images,
    check_int,
    check_ints,
    check_same_batch,
    check_tensor,
    describe,
    require,
)

__all__ = ["AttributeJudge", "attribute_accuracy", "object_colour"]


def _check_attributes(attributes: object) -> tuple[str, ...]:
    if not isinstance(attributes, (tuple, list)) or not attributes:
        raise TypeError(f"attributes must be a non-empty tuple, got {describe(attributes)}")
    for name in attributes:
        check_choice("attributes", name, ATTRIBUTES)
    require(len(set(attributes)) == len(attributes), "attributes", "without repeats", attributes)
    return tuple(attributes)


def _check_targets(name: str, targets: object, attributes: tuple[str, ...]) -> torch.Tensor:
    """Check indices ``(B, len(attributes))``, each below its attribute's number of values
    (a scan: for evaluation, which sees the data once; ``loss`` leaves it to cross_entropy)."""
    check_tensor(name, targets, ndim=2, dtype="integer", shape=(None, len(attributes)))
    sizes = [len(ATTRIBUTES[a]) for a in attributes]
    ok = bool(((targets >= 0) & (targets < targets.new_tensor(sizes))).all())
    require(ok, name, f"indices below {sizes} ({', '.join(attributes)})", "values out of range")
    return targets


class AttributeJudge(nn.Module):
    """Images ``(B, 3, S, S)`` (``S = image_size``) -> logits per attribute, e.g.
    ``{"shape": (B, 3), "colour": (B, 6), "size": (B, 2)}``.

    A convolution over 4x4 pixel patches (S -> S/4 on a side) and a hidden layer feed one
    linear head per name in ``attributes`` (keys of :data:`mmlib.data.world.ATTRIBUTES`).
    Targets and predictions are ``(B, len(attributes))`` indices in that order.
    """

    def __init__(
        self,
        attributes: tuple[str, ...] = ("shape", "colour", "size"),
        image_size: int = 16,
        width: int = 16,
        hidden: int = 128,
    ):
        super().__init__()
        self.attributes = _check_attributes(attributes)
        self.image_size = check_int("image_size", image_size, minimum=4)
        require(image_size % 4 == 0, "image_size", "a multiple of 4", image_size)
        check_ints(minimum=1, width=width, hidden=hidden)
        cells = (image_size // 4) ** 2
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=4),  # (B, width, S/4, S/4): a vector per 4x4 patch
            nn.ReLU(),
            nn.Flatten(),  # (B, width * cells)
            nn.Linear(width * cells, hidden),
            nn.ReLU(),
        )
        self.heads = nn.ModuleDict(
            {name: nn.Linear(hidden, len(ATTRIBUTES[name])) for name in self.attributes}
        )
        self.threshold: float | None = None  # the abstain rule, set by calibrate()
        self.centres: torch.Tensor | None = None  # (colours, 3) typical colours, by calibrate()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images("images", images, size=self.image_size)
        h = self.features(images)  # (B, hidden)
        return {name: head(h) for name, head in self.heads.items()}

    def loss(
        self, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Sum of the per-attribute cross-entropies for ``targets (B, len(attributes))``; also
        returns each head's loss as a float."""
        check_tensor("targets", targets, dtype="integer", shape=(None, len(self.attributes)))
        logits = self(images)  # checks images
        check_same_batch(images=images, targets=targets)
        try:  # an index out of range: cross_entropy's IndexError, named (no scan per step)
            parts = {
                name: F.cross_entropy(logits[name], targets[:, k].to(logits[name].device))
                for k, name in enumerate(self.attributes)
            }
        except IndexError:
            raise ValueError(f"targets must hold indices in range for {self.attributes}") from None
        return sum(parts.values()), {name: float(v.detach()) for name, v in parts.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted indices ``(B, len(attributes)) int64``, in the order of ``attributes``."""
        logits = self(images)
        return torch.stack([logits[name].argmax(dim=1) for name in self.attributes], dim=1)

    @torch.no_grad()
    def colour_distance(self, images: torch.Tensor) -> torch.Tensor:
        """``(B,)``: how far each object's colour (:func:`object_colour`) lies from the typical
        colour, on the calibration images, of the colour the judge reads (RGB distance)."""
        if self.centres is None:
            raise RuntimeError("the judge is not calibrated: call judge.calibrate(real_images)")
        read = self.predict(images)[:, self.attributes.index("colour")].cpu()  # checks images
        return (object_colour(images).cpu() - self.centres[read]).norm(dim=1)

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, keep: float = 0.99) -> float:
        """Calibrate the abstain rule on *real* ``images`` showing every colour; return the
        ``threshold``.

        For each colour the judge can read, its typical colour is the mean object colour of
        the images it reads as that colour; the threshold is the distance from it
        (:meth:`colour_distance`) that a share ``keep`` of the real images, ``0 < keep <= 1``,
        stay within. Needs ``"colour"`` among the judge's attributes.
        """
        require("colour" in self.attributes, "attributes", "a tuple with 'colour'", self.attributes)
        require(0.0 < check_float("keep", keep) <= 1.0, "keep", "in (0, 1]", keep)
        read = self.predict(images)[:, self.attributes.index("colour")].cpu()  # checks images
        colours = object_colour(images).cpu()  # (B, 3)
        counts = torch.bincount(read, minlength=len(ATTRIBUTES["colour"]))
        missing = [ATTRIBUTES["colour"][k] for k in (counts == 0).nonzero().flatten()]
        require(not missing, "images", "of every colour", f"none read as {missing}")
        centres = torch.zeros(len(counts), 3).index_add_(0, read, colours) / counts.view(-1, 1)
        self.centres = centres
        distance = (colours - centres[read]).norm(dim=1).double()
        self.threshold = float(torch.quantile(distance, keep))
        return self.threshold

    @torch.no_grad()
    def abstains(self, images: torch.Tensor) -> torch.Tensor:
        """``(B,) bool``: True where the object's colour lies farther from the colour the judge
        reads than ``threshold``, i.e. a colour unlike any real scene's (pink read as
        purple). Call :meth:`calibrate` first."""
        return self.colour_distance(images) > self.threshold  # checks that it is calibrated


@torch.no_grad()
def object_colour(images: torch.Tensor, core: float = 0.8) -> torch.Tensor:
    """``(B, 3)``: the mean colour of each image's object, over its *core* pixels, those whose
    brightest channel reaches ``core`` (``0 < core <= 1``) times the image's brightest value.
    The background is black, so the core is the object without its blurred rim."""
    check_images("images", images, size=None, finite=True)  # not per step: a scan is fine
    require(0.0 < check_float("core", core) <= 1.0, "core", "in (0, 1]", core)
    brightness = images.amax(dim=1)  # (B, S, S)
    peak = brightness.flatten(1).amax(dim=1).view(-1, 1, 1)
    mask = (brightness >= core * peak).unsqueeze(1).to(images.dtype)  # (B, 1, S, S)
    return (images * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3))


def attribute_accuracy(
    predicted: torch.Tensor,
    targets: torch.Tensor,
    attributes: tuple[str, ...] = ("shape", "colour", "size"),
) -> dict[str, float]:
    """Accuracy per attribute and ``"all"`` (every attribute right) for ``(B, A)`` indices."""
    attributes = _check_attributes(attributes)
    _check_targets("predicted", predicted, attributes)
    _check_targets("targets", targets, attributes)
    check_same_batch(predicted=predicted, targets=targets)
    right = predicted.cpu() == targets.cpu()  # (B, A)
    scores = {name: right[:, k].float().mean().item() for k, name in enumerate(attributes)}
    scores["all"] = right.all(dim=1).float().mean().item()
    return scores

"""Handwritten digits as image-caption pairs, at the same interface as the shapes world.

scikit-learn ships 1,797 digits of 8x8 pixels (``sklearn.datasets.load_digits``, no download).
They are scaled up to 32x32 with bilinear interpolation, copied to three channels and captioned
"a handwritten seven".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from mmlib.shapes import IMAGE_SIZE, _item_index, _row_index
from mmlib.validate import check_float, check_int, describe

__all__ = ["DIGIT_WORDS", "Digits", "DigitsDataset", "make_digits"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass
class Digits:
    """N digits: ``images (N, 3, 32, 32) float`` in [0, 1], ``labels (N,) int64`` in 0..9 and
    ``captions`` (N strings). Index it with an int, a slice or an index tensor to get ``Digits``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    captions: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int | slice | torch.Tensor) -> Digits:
        rows = _row_index("index", index, len(self))
        return Digits(
            self.images[rows], self.labels[rows], [self.captions[i] for i in rows.tolist()]
        )


def make_digits(seed: int = 0, test_fraction: float = 0.25) -> tuple[Digits, Digits]:
    """All 1,797 digits split into ``(train, test)``, stratified by label, the same for a seed."""
    check_int("seed", seed, minimum=0)
    check_float("test_fraction", test_fraction, low=0.0, high=1.0)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    data = load_digits()
    small = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    large = F.interpolate(small, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear")
    images = large.clamp(0.0, 1.0).repeat(1, 3, 1, 1)  # (N, 3, 32, 32)
    labels = torch.tensor(data.target, dtype=torch.long)
    rows = torch.arange(len(labels))
    train, test = train_test_split(
        rows.numpy(), test_size=test_fraction, random_state=seed, stratify=labels.numpy()
    )
    everything = Digits(images, labels, [f"a handwritten {DIGIT_WORDS[k]}" for k in labels])
    return everything[torch.from_numpy(train)], everything[torch.from_numpy(test)]


class DigitsDataset(Dataset):
    """:class:`Digits` as a ``torch.utils.data.Dataset``: an item is a dict with ``image
    (3, 32, 32) float``, ``caption`` str and ``label`` () int64."""

    def __init__(self, digits: Digits):
        if not isinstance(digits, Digits):
            raise TypeError(f"digits must be a Digits (from make_digits), got {describe(digits)}")
        self.digits = digits

    def __len__(self) -> int:
        return len(self.digits)

    def __getitem__(self, i: int) -> dict:
        i = _item_index(i, len(self))
        d = self.digits
        return {"image": d.images[i], "caption": d.captions[i], "label": d.labels[i]}

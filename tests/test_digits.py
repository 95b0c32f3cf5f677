"""scikit-learn's handwritten digits as image-caption pairs."""

import re

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from mmlib.digits import DIGIT_WORDS, Digits, DigitsDataset, make_digits


@pytest.fixture(scope="module")
def split():
    return make_digits(seed=0, test_fraction=0.25)


def test_digits_have_the_shapes_world_interface(split):
    train, test = split
    assert len(train) + len(test) == 1797 and len(test) == 450
    for part in split:
        assert part.images.shape == (len(part), 3, 32, 32) and part.images.dtype == torch.float32
        assert float(part.images.min()) >= 0.0 and float(part.images.max()) <= 1.0
        assert torch.equal(part.images[:, 0], part.images[:, 2])  # grey: three equal channels
        assert part.labels.dtype == torch.int64 and set(part.labels.tolist()) == set(range(10))
        assert part.captions == [f"a handwritten {DIGIT_WORDS[k]}" for k in part.labels.tolist()]


def test_images_are_the_sklearn_digits_scaled_up(split):
    original = torch.tensor(load_digits().images, dtype=torch.float32).flatten(1) / 16
    labels = torch.tensor(load_digits().target)
    sources = []
    for part in split:
        back = F.interpolate(part.images[:, :1], size=8, mode="area").flatten(1)  # (N, 64)
        nearest = torch.cdist(back, original).argmin(1)
        assert torch.equal(labels[nearest], part.labels)
        sources.append(set(nearest.tolist()))
    assert not sources[0] & sources[1]  # no digit is in both train and test


def test_split_is_stratified_and_deterministic(split):
    train, test = split
    share = torch.bincount(test.labels, minlength=10) / torch.bincount(
        torch.cat([train.labels, test.labels]), minlength=10
    )
    assert bool(((share > 0.2) & (share < 0.3)).all())
    again = make_digits(seed=0, test_fraction=0.25)
    assert torch.equal(again[0].images, train.images) and again[1].captions == test.captions
    other = make_digits(seed=1, test_fraction=0.25)
    assert not torch.equal(other[0].labels, train.labels)


def test_indexing_and_dataloader(split):
    train, _ = split
    part = train[5:9]
    assert isinstance(part, Digits) and len(part) == 4 and part.captions == train.captions[5:9]
    assert train[torch.tensor([2, 0])].captions == [train.captions[2], train.captions[0]]
    assert len(train[-1]) == 1
    dataset = DigitsDataset(train)
    item = dataset[3]
    assert torch.equal(item["image"], train.images[3]) and int(item["label"]) == int(
        train.labels[3]
    )
    assert int(dataset[torch.tensor(3)]["label"]) == int(train.labels[3])
    batch = next(iter(DataLoader(dataset, batch_size=10)))
    assert batch["image"].shape == (10, 3, 32, 32) and batch["label"].shape == (10,)
    assert batch["caption"] == train.captions[:10]


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: make_digits(seed=-1), ValueError, "seed"),
        (lambda: make_digits(seed="0"), TypeError, "seed"),
        (lambda: make_digits(test_fraction=0.0), ValueError, "test_fraction"),
        (lambda: make_digits(test_fraction=2), ValueError, "test_fraction"),
        (lambda: make_digits(test_fraction="a"), TypeError, "test_fraction"),
        (lambda: DigitsDataset([1, 2]), TypeError, "digits"),
        (lambda: DigitsDataset(make_digits()[1])[450], IndexError, "i"),
        (lambda: make_digits()[1]["x"], TypeError, "index"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, error, name):
    with pytest.raises(error, match=rf"^{re.escape(name)} "):
        call()


def test_show_scenes_draws_digits_with_their_captions(split):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmlib.shapes import show_scenes

    fig = show_scenes(split[1][:6], nrow=3)
    assert [t.get_text() for t in fig.axes[0].texts] == split[1].captions[:6]
    plt.close(fig)

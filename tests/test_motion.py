"""Tiny videos of a moving shapes-world object, and the classifier that reads them."""

import pytest
import torch

from mmlib.data.clips import DIRECTIONS, Clips, make_clips
from mmlib.data.world import COLOURS, SHAPES, SIZES, Combinations
from mmlib.models.motion import VideoClassifier
from tests.bad_input import raises_naming

_MOVES = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}  # (dx, dy) per step


@pytest.fixture(scope="module")
def clips():
    return make_clips(400, seed=3)


def test_shapes_and_ranges(clips):
    assert isinstance(clips, Clips) and len(clips) == 400
    assert clips.videos.shape == (400, 4, 3, 32, 32) and clips.videos.dtype == torch.float32
    assert float(clips.videos.min()) >= 0.0 and float(clips.videos.max()) <= 1.0
    assert clips.directions.shape == (400,) and clips.directions.dtype == torch.long
    assert clips.attributes.shape == (400, 3) and clips.centres.shape == (400, 4, 2)
    assert set(clips.directions.tolist()) == set(range(len(DIRECTIONS)))
    assert float(clips.centres.min()) >= 6.5 and float(clips.centres.max()) <= 25.5


def test_captions_name_the_object_and_its_motion(clips):
    for caption, (shape, colour, size), d in zip(
        clips.captions, clips.attributes.tolist(), clips.directions.tolist(), strict=True
    ):
        assert (
            caption == f"the {SIZES[size]} {COLOURS[colour]} {SHAPES[shape]} moves {DIRECTIONS[d]}"
        )


def test_each_frame_is_the_last_one_shifted_by_step(clips):
    for k in range(0, 400, 37):
        dx, dy = _MOVES[DIRECTIONS[int(clips.directions[k])]]
        video = clips.videos[k]
        for t in range(3):
            assert torch.equal(video[t + 1], video[t].roll((3 * dy, 3 * dx), dims=(1, 2)))
            moved = clips.centres[k, t + 1] - clips.centres[k, t]
            assert torch.allclose(moved, torch.tensor([3.0 * dx, 3.0 * dy]))
        assert float(video[0].sum()) > 1.0  # the object is there, not rolled out of sight


def test_the_object_is_drawn_where_centres_say(clips):
    ys, xs = torch.meshgrid(torch.arange(32) + 0.5, torch.arange(32) + 0.5, indexing="ij")
    circles = clips.attributes[:, 0] == SHAPES.index("circle")
    mass = clips.videos[circles].sum(2)  # (M, F, H, W)
    total = mass.sum((-1, -2))
    centroid = torch.stack([(mass * xs).sum((-1, -2)), (mass * ys).sum((-1, -2))], -1)
    assert torch.allclose(centroid / total[..., None], clips.centres[circles], atol=0.1)


def test_one_random_frame_does_not_give_the_direction_away():
    clips = make_clips(4000, seed=0)
    frame = torch.randint(4, (4000,), generator=torch.Generator().manual_seed(0))
    where = clips.centres[torch.arange(4000), frame]  # (N, 2)
    means = torch.stack([where[clips.directions == d].mean(0) for d in range(4)])  # (4, 2)
    assert float((means - means.mean(0)).abs().max()) < 0.6
    first = clips.centres[:, 0, 0]  # frame 0 alone does: left starts right of where right starts
    assert float(first[clips.directions == 0].mean() - first[clips.directions == 1].mean()) > 6


def test_deterministic_and_seeded():
    a, b, c = make_clips(20, seed=5), make_clips(20, seed=5), make_clips(20, seed=6)
    assert torch.equal(a.videos, b.videos) and a.captions == b.captions
    assert not torch.equal(a.videos, c.videos)


def test_frames_step_only_and_exclude():
    clips = make_clips(30, seed=1, frames=3, step=2)
    assert clips.videos.shape == (30, 3, 3, 32, 32)
    moved = (clips.centres[:, 1:] - clips.centres[:, :-1]).abs().sum(-1)
    assert torch.allclose(moved, torch.full_like(moved, 2.0))
    reds = Combinations(("colour",), {("red",)})
    assert set(make_clips(30, seed=1, only=reds).attributes[:, 1].tolist()) == {0}
    assert 0 not in make_clips(30, seed=1, exclude=reds).attributes[:, 1].tolist()


def test_indexing(clips):
    part = clips[torch.tensor([3, 1])]
    assert (
        torch.equal(part.videos, clips.videos[[3, 1]]) and part.captions == clips.captions[3:0:-2]
    )
    assert len(clips[5]) == 1 and len(clips[:7]) == 7 and len(clips[clips.directions == 0]) > 0
    with raises_naming(TypeError, "index"):
        clips["a"]


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n": 0}, ValueError, "n"),
        ({"n": 2.0}, TypeError, "n"),
        ({"seed": -1}, ValueError, "seed"),
        ({"frames": 1}, ValueError, "frames"),
        ({"step": 0}, ValueError, "step"),
        ({"frames": 4, "step": 7}, ValueError, "step"),
        ({"only": "red"}, TypeError, "only"),
    ],
)
def test_make_clips_rejects_bad_input(kwargs, error, name):
    with raises_naming(error, name):
        make_clips(**({"n": 4} | kwargs))


@pytest.mark.parametrize("temporal", ["mean", "gru", "difference"])
def test_classifier_shapes_and_batch_independence(clips, temporal):
    torch.manual_seed(0)
    model = VideoClassifier(num_classes=4, dim=16, width=4, temporal=temporal).eval()
    videos = clips.videos[:5]
    with torch.no_grad():
        together = model(videos)
        alone = torch.cat([model(videos[k : k + 1]) for k in range(5)])
    assert together.shape == (5, 4)
    assert torch.allclose(together, alone, atol=1e-5)


def test_only_mean_pooling_is_blind_to_the_order_of_frames(clips):
    torch.manual_seed(0)
    videos = clips.videos[:8]
    for temporal, blind in (("mean", True), ("gru", False), ("difference", False)):
        model = VideoClassifier(dim=16, width=4, temporal=temporal).eval()
        with torch.no_grad():
            same = torch.allclose(model(videos), model(videos.flip(1)), atol=1e-5)
        assert same == blind, temporal


def test_classifier_rejects_bad_input():
    with raises_naming(ValueError, "temporal"):
        VideoClassifier(temporal="max")
    with raises_naming(ValueError, "num_classes"):
        VideoClassifier(num_classes=1)
    with raises_naming(ValueError, "dim"):
        VideoClassifier(dim=0)
    with raises_naming(TypeError, "width"):
        VideoClassifier(width=4.0)
    model = VideoClassifier(dim=8, width=4, temporal="difference")
    with raises_naming(ValueError, "videos"):
        model(torch.rand(2, 3, 32, 32))
    with raises_naming(ValueError, "videos"):
        model(torch.rand(2, 4, 1, 32, 32))
    with raises_naming(TypeError, "videos"):
        model(torch.zeros(2, 4, 3, 32, 32, dtype=torch.long))
    with raises_naming(ValueError, "videos"):
        model(torch.rand(2, 1, 3, 32, 32))  # differences need two frames
    with raises_naming(TypeError, "videos"):
        model(None)
    assert (
        VideoClassifier(dim=8, width=4, temporal="mean")(torch.rand(2, 1, 3, 32, 32)).shape[0] == 2
    )

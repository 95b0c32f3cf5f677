"""Bad input to :func:`mmlib.data.clips.make_clips` (the clips themselves: ``test_motion.py``)."""

import pytest

from mmlib.data.clips import make_clips
from tests.bad_input import raises_naming


def test_the_longest_step_that_stays_in_the_frame_is_allowed():
    clips = make_clips(8, seed=0, frames=10, step=2)  # 9 steps of 2 pixels: 18, the most
    assert clips.videos.shape == (8, 10, 3, 32, 32)
    assert float(clips.centres.min()) >= 6.5 and float(clips.centres.max()) <= 25.5  # inside


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"frames": 10, "step": 3}, ValueError, "step"),
        ({"step": 1.5}, TypeError, "step"),
        ({"frames": 2.0}, TypeError, "frames"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"exclude": "red"}, TypeError, "exclude"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(kwargs, error, name):
    with raises_naming(error, name):
        make_clips(**({"n": 4} | kwargs))

"""Device helper, seeding, validation helpers, source display and diagrams."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

import mmlib
from mmlib import validate
from mmlib.book.diagram import draw_diagram
from mmlib.book.show import show_source, source_of


def test_get_device_defaults_to_an_available_device():
    device = mmlib.get_device()
    assert device.type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        assert device.type != "cuda"


def test_get_device_honours_cpu_and_env(monkeypatch):
    assert mmlib.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("MMBOOK_DEVICE", "cpu")
    assert mmlib.get_device() == torch.device("cpu")


def test_get_device_rejects_unknown_and_unavailable(monkeypatch):
    with pytest.raises(ValueError, match="prefer must be one of"):
        mmlib.get_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no cuda device is available"):
        mmlib.get_device("cuda")


def test_device_report_keys():
    report = mmlib.device_report(torch.device("cpu"))
    assert set(report) == {"python", "torch", "platform", "device", "device_name"}
    assert report["device"] == "cpu" and report["torch"] == torch.__version__


def test_seed_everything_repeats_draws():
    g = mmlib.seed_everything(3)
    a = torch.rand(3), torch.randint(0, 100, (3,), generator=g)
    g = mmlib.seed_everything(3)
    b = torch.rand(3), torch.randint(0, 100, (3,), generator=g)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("seed, error", [(1.5, TypeError), (True, TypeError), (-1, ValueError)])
def test_seed_rejects_bad_seeds(seed, error):
    with pytest.raises(error, match="seed must"):
        mmlib.seed_everything(seed)


def test_check_tensor_messages():
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor, got list \[1\]"):
        validate.check_tensor("x", [1])
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got a torch.float32 tensor"):
        validate.check_tensor("x", torch.zeros(3), ndim=2)
    with pytest.raises(TypeError, match="x must have dtype torch.int64"):
        validate.check_tensor("x", torch.zeros(3), dtype=torch.int64)
    with pytest.raises(TypeError, match="x must be an integer tensor"):
        validate.check_tensor("x", torch.zeros(3, dtype=torch.bool), dtype="integer")
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 4\)"):
        validate.check_tensor("x", torch.zeros(2, 3), shape=(None, 4))
    assert validate.check_tensor("x", torch.zeros(0), allow_empty=True).numel() == 0


def test_scalar_checks():
    assert validate.check_int("n", 3, minimum=1) == 3
    with pytest.raises(TypeError, match="n must be an int"):
        validate.check_int("n", True)
    assert validate.check_float("lr", 1, low=0) == 1.0
    with pytest.raises(TypeError, match="lr must be a number"):
        validate.check_float("lr", "0.1")
    with pytest.raises(ValueError, match=r"lr must be in \[0, 1\]"):
        validate.check_float("lr", 2.0, low=0, high=1)
    assert validate.check_choice("mode", "a", ["a", "b"]) == "a"
    with pytest.raises(ValueError, match=r"mode must be one of \['a', 'b'\], got 'c'"):
        validate.check_choice("mode", "c", ["a", "b"])
    assert validate.check_strings("texts", ("a", "b")) == ["a", "b"]
    with pytest.raises(TypeError, match="texts must be a list of str, got str"):
        validate.check_strings("texts", "a caption")
    with pytest.raises(TypeError, match="questions must hold only str, got int"):
        validate.check_strings("questions", ["what?", 3])


def test_check_images_and_token_ids():
    with pytest.raises(ValueError, match="images must have 3 channels"):
        validate.check_images("images", torch.zeros(1, 1, 32, 32))
    assert validate.check_images("images", torch.zeros(1, 3, 8, 8), size=None).shape[-1] == 8
    nan = torch.full((1, 3, 32, 32), float("nan"))
    assert validate.check_images("images", nan) is nan  # forward passes do not scan values
    with pytest.raises(ValueError, match="images must hold only finite values"):
        validate.check_images("images", nan, finite=True)  # entry points that see data once do
    with pytest.raises(ValueError, match=r"ids must hold token ids in \[0, 5\)"):
        validate.check_token_ids("ids", torch.tensor([[0, 5]]), 5)


def test_show_source_strips_module_docstring():
    text = source_of(mmlib.seed)
    assert text.startswith("from __future__") and '"""Seeding' not in text.splitlines()[0]
    assert "def seed_everything" in show_source(mmlib.seed_everything).data
    with pytest.raises(TypeError, match="obj must be a module, class or function"):
        source_of(42)


def test_draw_diagram_draws_and_validates():
    fig = draw_diagram({"a": (0, 0, "A"), "b": (3, 1, "B")}, [("a", "b")], title="t")
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and ax.get_title() == "t"
    with pytest.raises(ValueError, match="arrows name a box that is not in boxes: 'c'"):
        draw_diagram({"a": (0, 0, "A")}, [("a", "c")])
    with pytest.raises(ValueError, match="boxes must be a non-empty dict"):
        draw_diagram({}, [])
    with pytest.raises(ValueError, match=r"boxes\['a'\] must be a tuple"):
        draw_diagram({"a": (0, 0)}, [])

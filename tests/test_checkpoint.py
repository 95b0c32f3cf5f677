"""Checkpoints round-trip, refuse what does not fit, and survive a crash in the middle of a save."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

import mmlib.training.checkpoint
from mmlib.training.checkpoint import load_checkpoint, save_checkpoint
from tests.bad_input import raises_naming


def make_model(seed=0, hidden=8):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))


def same_weights(a, b):
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def stepped_adam(model):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(3, 4)).sum().backward()
    optimizer.step()
    return optimizer


def test_round_trip_of_weights_optimizer_and_metadata(tmp_path):
    model = make_model(0)
    optimizer = stepped_adam(model)
    path = save_checkpoint(
        tmp_path / "sub" / "ckpt.pt",
        model,
        optimizer,
        step=7,
        config={"lr": 0.1, "layers": [4, 8, 2]},
    )
    assert path == tmp_path / "sub" / "ckpt.pt" and leftovers(path.parent) == []
    restored = make_model(1)
    restored_optimizer = torch.optim.Adam(restored.parameters(), lr=0.5)
    metadata = load_checkpoint(str(path), restored, restored_optimizer)
    assert metadata == {"step": 7, "config": {"lr": 0.1, "layers": [4, 8, 2]}}
    assert same_weights(model, restored)
    assert restored_optimizer.param_groups[0]["lr"] == 0.1
    state, restored_state = (
        optimizer.state_dict()["state"],
        restored_optimizer.state_dict()["state"],
    )
    assert torch.equal(state[0]["exp_avg"], restored_state[0]["exp_avg"])


def test_a_ddp_style_wrapper_saves_the_plain_keys(tmp_path):
    model = make_model(0)
    wrapped = nn.DataParallel(model)  # on the CPU it just holds .module, like DDP
    save_checkpoint(tmp_path / "c.pt", wrapped)
    plain = make_model(1)
    assert load_checkpoint(tmp_path / "c.pt", plain) == {}
    assert same_weights(model, plain)


def test_saving_again_replaces_the_file(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, make_model(0), step=1)
    save_checkpoint(path, make_model(2), step=2)
    model = make_model(1)
    assert load_checkpoint(path, model) == {"step": 2}
    assert same_weights(model, make_model(2))
    assert leftovers(tmp_path) == []


def test_a_failed_save_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, make_model(0), step=1)
    real_save = torch.save

    def half_then_crash(obj, file):
        real_save(obj, file)
        file.truncate(file.tell() // 2)  # half of the bytes are on disk ...
        raise OSError("disk full")  # ... when the write fails

    monkeypatch.setattr(mmlib.training.checkpoint.torch, "save", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, make_model(2), step=2)
    monkeypatch.undo()
    model = make_model(1)
    assert load_checkpoint(path, model) == {"step": 1}
    assert same_weights(model, make_model(0))
    assert leftovers(tmp_path) == []


def test_a_process_killed_mid_save_keeps_the_old_checkpoint(tmp_path):
    """SIGKILL while the new checkpoint is half written: no cleanup runs, the old one stays."""
    path = tmp_path / "c.pt"
    save_checkpoint(path, make_model(0), step=1)
    started = tmp_path / "started"
    script = textwrap.dedent(
        f"""
        import time, torch
        from torch import nn
        import mmlib.training.checkpoint as checkpoint

        real_save = torch.save

        def slow_save(obj, file):
            real_save(obj, file)
            file.truncate(file.tell() // 2)
            file.flush()
            open({str(started)!r}, "w").close()  # tell the test we are mid-write
            time.sleep(60)

        checkpoint.torch.save = slow_save
        checkpoint.save_checkpoint({str(path)!r}, nn.Linear(4, 2), step=2)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert child.poll() is None, "the saving process ended before writing"
            assert time.monotonic() < deadline, "the saving process never started writing"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(leftovers(tmp_path)) == 1  # the half-written temporary file, never the target
    model = make_model(1)
    assert load_checkpoint(path, model) == {"step": 1}
    assert same_weights(model, make_model(0))


def test_missing_truncated_and_foreign_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint .*nope.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt", make_model())
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_checkpoint(tmp_path, make_model())
    path = save_checkpoint(tmp_path / "c.pt", make_model())
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="checkpoint .*truncated.pt is truncated or corrupt"):
        load_checkpoint(truncated, make_model())
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="garbage.pt is truncated or corrupt"):
        load_checkpoint(garbage, make_model())
    plain = tmp_path / "plain.pt"
    torch.save(make_model().state_dict(), plain)
    with pytest.raises(ValueError, match="plain.pt must be an mmlib checkpoint"):
        load_checkpoint(plain, make_model())
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.ones(2), tensor)
    with pytest.raises(ValueError, match="tensor.pt must be an mmlib checkpoint .*got Tensor"):
        load_checkpoint(tensor, make_model())


class Payload:
    """Not a tensor: unpickling it would run arbitrary code."""


def test_arbitrary_objects_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(
        {"format": mmlib.training.checkpoint.FORMAT, "model": Payload()}, path, pickle_module=pickle
    )
    with pytest.raises(ValueError, match="evil.pt is truncated or corrupt: .*Weights only load"):
        load_checkpoint(path, make_model())


def test_mismatched_weights_are_listed(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", make_model(hidden=8))
    wider = make_model(hidden=16)
    before = [p.clone() for p in wider.parameters()]
    with pytest.raises(
        ValueError,
        match=r"(?s)c.pt does not fit the model: .*size mismatch for 0.weight: copying a param "
        r"with shape torch.Size\(\[8, 4\]\) from checkpoint, the shape in current model is "
        r"torch.Size\(\[16, 4\]\)",
    ):
        load_checkpoint(path, wider)
    assert all(torch.equal(a, b) for a, b in zip(before, wider.parameters(), strict=True))
    bigger = nn.Sequential(make_model(), nn.Linear(2, 2))
    with pytest.raises(
        ValueError, match=r'(?s)Missing key\(s\) in state_dict: "0.0.weight".*Unexpected key\(s\)'
    ):
        load_checkpoint(path, bigger)
    model = make_model(1)
    before = [p.clone() for p in model.parameters()]
    with raises_naming(ValueError, "optimizer") as info:
        load_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert "c.pt holds no optimizer state" in str(info.value)  # names the file and the problem
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_mismatched_optimizer_is_named(tmp_path):
    model = make_model()
    path = save_checkpoint(tmp_path / "c.pt", model, stepped_adam(model))
    other = torch.optim.Adam([{"params": [model[0].weight]}, {"params": [model[0].bias]}])
    with pytest.raises(ValueError, match="c.pt does not fit the optimizer"):
        load_checkpoint(path, model, other)


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda p: save_checkpoint(3, make_model()), TypeError, "path"),
        (lambda p: save_checkpoint(p, "model"), TypeError, "model"),
        (lambda p: save_checkpoint(p, make_model(), "adam"), TypeError, "optimizer"),
        (lambda p: save_checkpoint(p, make_model(), when=object()), TypeError, "metadata"),
        (lambda p: save_checkpoint(p, make_model(), x=float("nan")), TypeError, "metadata"),
        (lambda p: load_checkpoint(None, make_model()), TypeError, "path"),
        (lambda p: load_checkpoint(p, {}), TypeError, "model"),
        (lambda p: load_checkpoint(p, make_model(), "adam"), TypeError, "optimizer"),
        (lambda p: load_checkpoint(p, make_model(), map_location=0), TypeError, "map_location"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, call, error, name):
    with raises_naming(error, name):
        call(tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []

"""Data-parallel training with torch.distributed + DDP equals single-process training.

The main test starts two CPU processes with torchrun (gloo, localhost, offline); each takes
half of every global batch of 32 rows. After 20 AdamW steps their weights must equal those
of one process trained on the whole batches, up to the order of float sums: within 1e-9 in
float64, which checks the maths, and within 1e-5 in float32, what the book trains in
(measured: about 1e-16 and 5e-8). Adam divides by the root of the squared gradients, which
magnifies rounding where gradients are tiny, so a harder problem can need a wider float32
tolerance.
"""

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mmlib.training import ddp
from mmlib.training.loop import train
from tests.bad_input import raises_naming
from tests.ddp_worker import GLOBAL_BATCH, LR, STEPS, loss_fn, make_problem

ROOT = Path(__file__).resolve().parent.parent
ATOL = {"float64": 1e-9, "float32": 1e-5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def single_process(dtype="float32"):
    model, batches = make_problem(dtype)
    history = train(model, loss_fn, batches, steps=STEPS, lr=LR, device="cpu", progress=False)
    return model, history


def test_two_processes_match_one_process(tmp_path, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # rank 0's progress bar goes to its log
    options = [f"--log-dir={tmp_path / 'logs'}", "--redirects=3"]
    try:
        ddp.run_torchrun("tests.ddp_worker", tmp_path, nproc=2, timeout=120, options=options)
    finally:
        logs = {p.parent.name: p.read_text() for p in (tmp_path / "logs").rglob("stderr.log")}
        print("".join(logs.values())[-3000:])

    for dtype, atol in ATOL.items():
        ranks = [torch.load(tmp_path / f"rank{r}_{dtype}.pt", weights_only=True) for r in (0, 1)]
        model, history = single_process(dtype)
        worst = 0.0
        for name, weight in model.state_dict().items():
            assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name])  # kept in sync
            worst = max(worst, (ranks[0]["state"][name] - weight).abs().max().item())
        print(f"{dtype}: max |DDP - single process| over all weights = {worst:.1e}")
        assert worst <= atol, dtype
        assert ranks[0]["loss"] == pytest.approx(history.loss, rel=10 * atol)  # rank average
        assert ranks[0]["loss"][-1] < 0.5 * ranks[0]["loss"][0]  # and it learned

        _, batches = make_problem(dtype)
        first_global = next(iter(batches))[0]
        half = GLOBAL_BATCH // 2
        for r in (0, 1):
            assert torch.equal(ranks[r]["first_shard"], first_global[r * half : (r + 1) * half])
    assert "ddp-run" in logs["0"] and "ddp-run" not in logs["1"]  # only rank 0 shows progress


@pytest.fixture
def one_process_group(monkeypatch):
    """torchrun's environment for a world of one process on this machine."""
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    yield
    ddp.stop_distributed()
    assert not dist.is_initialized()


def test_ddp_true_in_process_wraps_the_model(one_process_group):
    model, batches = make_problem()
    wrapped = []

    def spying(net, batch):
        wrapped.append(isinstance(net, DistributedDataParallel))
        return loss_fn(net, batch)

    history = train(model, spying, batches, steps=STEPS, lr=LR, device="cpu", ddp=True,
                    progress=False)  # fmt: skip
    assert all(wrapped) and len(wrapped) == STEPS
    reference, reference_history = single_process()
    assert history.loss == reference_history.loss  # one process: the very same arithmetic
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)
    assert dist.is_initialized() and dist.get_world_size() == 1  # kept for later calls
    again = train(model, loss_fn, batches, steps=2, device="cpu", progress=False)  # reuses it
    assert len(again.loss) == 2


def test_an_existing_group_is_used_and_kept(one_process_group):
    dist.init_process_group("gloo")
    model, batches = make_problem()
    seen = []
    train(model, lambda net, b: seen.append(type(net)) or loss_fn(net, b), batches, steps=2,
          device="cpu", progress=False)  # fmt: skip
    assert seen == [DistributedDataParallel] * 2
    assert dist.is_initialized() and ddp.is_main_process()


def test_ddp_requested_reads_the_environment(monkeypatch):
    for name in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    assert ddp.ddp_requested(None) is False and ddp.ddp_requested(False) is False
    assert ddp.is_main_process()
    with raises_naming(ValueError, "ddp"):
        ddp.ddp_requested(True)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert ddp.ddp_requested(None) is False and ddp.ddp_requested(True) is True
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert ddp.ddp_requested(None) is True and ddp.ddp_requested(False) is False
    monkeypatch.setenv("WORLD_SIZE", "two")
    with raises_naming(ValueError, "WORLD_SIZE"):
        ddp.ddp_requested(None)
    with raises_naming(TypeError, "ddp"):
        ddp.ddp_requested(1)


def test_start_distributed_rejects_devices_it_cannot_use(monkeypatch):
    with raises_naming(ValueError, "device"):
        ddp.start_distributed(torch.device("meta"))
    monkeypatch.setenv("LOCAL_RANK", "7")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with raises_naming(ValueError, "LOCAL_RANK"):
        ddp.start_distributed(torch.device("cuda"))


def test_run_torchrun_checks_its_arguments():
    with raises_naming(TypeError, "module"):
        ddp.run_torchrun("")
    with raises_naming(TypeError, "module"):
        ddp.run_torchrun(3)
    with raises_naming(TypeError, "options"):
        ddp.run_torchrun("mmlib.training.two_process_run", options="--log-dir=logs")
    with raises_naming(TypeError, "nproc"):
        ddp.run_torchrun("mmlib.training.two_process_run", nproc="2")
    with raises_naming(ValueError, "nproc"):
        ddp.run_torchrun("mmlib.training.two_process_run", nproc=0)


def test_run_torchrun_reports_a_failed_run():
    with pytest.raises(RuntimeError, match="(?s)torchrun failed.*mmlib.no_such_module FAILED"):
        ddp.run_torchrun("mmlib.no_such_module", nproc=1, timeout=120)

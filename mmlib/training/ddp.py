"""Data-parallel training on PyTorch's own engine: ``torch.distributed`` and DDP.

Launch a script with ``torchrun --nproc_per_node=N script.py``; torchrun sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` for every process.
:func:`mmlib.training.loop.train` notices them, calls :func:`start_distributed`, wraps the model in
``DistributedDataParallel`` (which averages gradients across processes during ``backward``)
and gives each process its slice of every global batch. This module holds the small pieces
that talk to ``torch.distributed``; nothing here averages gradients by hand.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import NoneType

import torch
import torch.distributed as dist

from mmlib.validate import check_int, check_strings, check_type, require

__all__ = [
    "DistributedRun",
    "ddp_requested",
    "is_main_process",
    "mean_across_processes",
    "run_torchrun",
    "start_distributed",
    "stop_distributed",
]


@dataclass(frozen=True)
class DistributedRun:
    """Where this process stands in a distributed run: its rank, the world size, its device."""

    rank: int
    world_size: int
    device: torch.device


def _env_world_size() -> int:
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {value!r}") from None


def ddp_requested(ddp: bool | None = None) -> bool:
    """Decide whether to train data-parallel.

    ``ddp=None`` means: yes when a process group is already initialised or ``WORLD_SIZE > 1``
    (as set by ``torchrun``). ``True`` and ``False`` force the answer; ``True`` without a
    process group or torchrun's environment raises ``ValueError``.
    """
    check_type("ddp", ddp, (bool, NoneType), "bool or None")
    initialised = dist.is_available() and dist.is_initialized()
    launched = "WORLD_SIZE" in os.environ
    if ddp is None:
        return initialised or _env_world_size() > 1
    need = "False without a process group or torchrun's environment (launch with torchrun)"
    require(not ddp or initialised or launched, "ddp", need, "True")
    return ddp


def start_distributed(device: torch.device) -> DistributedRun:
    """Join (or create) the default process group: gloo on the CPU, NCCL on CUDA.

    ``device`` is the device kind chosen for training; on CUDA each process takes the GPU
    ``cuda:LOCAL_RANK``. A group created here stays up for later calls (creating a second
    one in the same run is fragile) and is destroyed when the process exits.
    Returns the :class:`DistributedRun` of this process.
    """
    require(dist.is_available(), "ddp", "used with torch.distributed", "a torch without it")
    require(device.type in ("cpu", "cuda"), "device", "a CPU or CUDA device for ddp", str(device))
    if device.type == "cuda":
        local_rank, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        require(local_rank < gpus, "LOCAL_RANK", f"< the number of GPUs ({gpus})", local_rank)
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        atexit.register(stop_distributed)
    return DistributedRun(dist.get_rank(), dist.get_world_size(), device)


def stop_distributed() -> None:
    """Destroy the default process group, if there is one (called at exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True on rank 0 of a distributed run, and always True outside one."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def mean_across_processes(values: torch.Tensor) -> torch.Tensor:
    """Average a float tensor over all processes: ``(K,) float`` in, ``(K,) float`` out."""
    values = values.detach().clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def run_torchrun(
    module: str, *args: str, nproc: int = 2, timeout: float = 120.0, options: Sequence[str] = ()
) -> str:
    """Run ``torchrun --nproc_per_node=nproc -m module args...`` on this machine; return its output.

    The processes talk over gloo on 127.0.0.1 (offline), each on one CPU thread, on the CPU
    (``MMBOOK_DEVICE=cpu``); ``options`` go to torchrun itself (``["--log-dir=logs"]``). A run
    that fails or takes longer than ``timeout`` seconds raises
    ``RuntimeError`` with the end of its output; on a timeout every process is stopped.
    """
    import signal
    import socket
    import subprocess
    import sys

    check_strings("options", options)
    if not (isinstance(module, str) and module):
        raise TypeError(f"module must be a module name such as 'pkg.script', got {module!r}")
    check_int("nproc", nproc, minimum=1)
    with socket.socket() as sock:  # a free port for the processes to meet on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MMBOOK_DEVICE="cpu")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        *options,
        "-m",
        module,
        *map(str, args),
    ]
    child = subprocess.Popen(  # a session of its own, to stop every process on a timeout
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        message = f"torchrun took over {timeout} s and was stopped:\n{output[-4000:]}"
        raise RuntimeError(message) from None
    if child.returncode != 0:
        raise RuntimeError(f"torchrun failed (exit {child.returncode}):\n{output[-4000:]}")
    return output

"""One place that decides where tensors live: CUDA, Apple's MPS, or the CPU.

Every chapter calls :func:`get_device`, so the same notebook runs on the CPU kernel
(``mmbook-cpu``, which hides GPUs) and on the GPU kernel (``mmbook-gpu``).
"""

from __future__ import annotations

import os
import platform

import torch

from mmlib.validate import check_choice, require

_KNOWN = ("cuda", "mps", "cpu")


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device, or the one asked for.

    Order of preference: CUDA, then MPS, then the CPU. ``prefer`` (or the environment
    variable ``MMBOOK_DEVICE``) names one of ``"cuda"``, ``"mps"`` or ``"cpu"``; asking
    for a device that is not available raises ``ValueError`` instead of failing later
    inside torch.
    """
    choice = prefer if prefer is not None else os.environ.get("MMBOOK_DEVICE") or None
    if choice is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    check_choice("prefer", choice, [*_KNOWN, None])
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    require(available[choice], "prefer", "an available device", f"{choice!r} (none here)")
    return torch.device(choice)


def device_report(device: torch.device | None = None) -> dict[str, str]:
    """Describe the software and the device in use, as a dict of strings.

    The keys are ``python``, ``torch``, ``platform``, ``device`` and ``device_name``.
    """
    device = get_device() if device is None else torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple MPS"
    else:
        name = platform.processor() or platform.machine()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(terse=True),
        "device": device.type,
        "device_name": name,
    }

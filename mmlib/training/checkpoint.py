"""Checkpoints that survive crashes and never unpickle arbitrary objects.

:func:`save_checkpoint` writes to a temporary file next to the target, flushes it to disk
and then renames it over the target with ``os.replace`` (atomic on POSIX and Windows): a
crash mid-save leaves the previous checkpoint intact. :func:`load_checkpoint` reads with
``torch.load(weights_only=True)`` and loads with ``load_state_dict``, whose own report of
missing, unexpected and reshaped keys becomes the ``ValueError``; the model is left as it was.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from types import NoneType
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from mmlib.validate import check_type, require

__all__ = ["load_checkpoint", "save_checkpoint"]

FORMAT = "mmlib-checkpoint-1"


def _check_arguments(path: object, model: object, optimizer: object) -> tuple[Path, nn.Module]:
    """``path`` as a ``Path`` and the plain ``model``, both checked (and ``optimizer``)."""
    check_type("path", path, (str, os.PathLike), "str or os.PathLike")
    check_type("model", model, nn.Module, "torch.nn.Module")
    check_type("optimizer", optimizer, (torch.optim.Optimizer, NoneType), "torch Optimizer or None")
    # A DistributedDataParallel (or DataParallel) wrapper: use the plain model's keys.
    plain = model.module if isinstance(model, (DataParallel, DistributedDataParallel)) else model
    return Path(path), plain


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    **metadata: Any,
) -> Path:
    """Save ``model`` (and ``optimizer``) weights plus JSON-safe ``metadata`` to ``path``.

    The write is atomic: a temporary file in the same directory is written, flushed,
    ``fsync``-ed and renamed over ``path``; on any error it is removed and an existing
    checkpoint at ``path`` is left untouched. Returns ``path`` as a ``Path``.
    """
    path, model = _check_arguments(path, model, optimizer)
    try:
        metadata_json = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata must be JSON-safe (str, numbers, lists), got {error}") from None
    payload = {
        "format": FORMAT,
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "metadata": metadata_json,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load weights saved by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Returns the metadata dict. A missing file raises ``FileNotFoundError``; a truncated or
    corrupt file, a file that is not an mmlib checkpoint, or weights that do not fit the
    model (missing or unexpected keys, other shapes) raise ``ValueError`` naming the file
    and the problem. Loading uses ``weights_only=True``: no arbitrary objects are unpickled.
    """
    path, model = _check_arguments(path, model, optimizer)
    check_type("map_location", map_location, (str, torch.device), "str or torch.device")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist or is not a file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(f"checkpoint {path} is truncated or corrupt: {error}") from None
    ours = isinstance(payload, dict) and payload.get("format") == FORMAT
    ours = ours and isinstance(payload.get("model"), dict)
    found = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
    require(ours, f"checkpoint {path}", f"an mmlib checkpoint (format {FORMAT!r})", found)
    with_state = optimizer is None or payload.get("optimizer") is not None
    require(with_state, "optimizer", f"None: checkpoint {path} holds no optimizer state", "one")
    # torch lists missing, unexpected and reshaped keys itself, but may have copied the keys that
    # fit by then: keep the model's own weights to put back, so a failed load changes nothing.
    backup = {key: value.clone() for key, value in model.state_dict().items()}
    try:
        model.load_state_dict(payload["model"])
        if optimizer is not None:
            optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError) as error:
        model.load_state_dict(backup)
        part = "model" if isinstance(error, RuntimeError) else "optimizer"
        raise ValueError(f"checkpoint {path} does not fit the {part}: {error}") from None
    return json.loads(payload.get("metadata", "{}"))

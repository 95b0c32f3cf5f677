"""Checkpoints that survive crashes and never unpickle arbitrary objects.

:func:`save_checkpoint` writes to a temporary file next to the target, flushes it to disk
and then renames it over the target with ``os.replace`` (atomic on POSIX and Windows): a
crash mid-save leaves the previous checkpoint intact. :func:`load_checkpoint` reads with
``torch.load(weights_only=True)`` and checks the weights against the model before loading.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from mmlib.validate import describe

__all__ = ["load_checkpoint", "save_checkpoint"]

FORMAT = "mmlib-checkpoint-1"
_SHOWN = 5  # how many mismatched keys an error message lists


def _check_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {describe(path)}")
    return Path(path)


def _check_model_and_optimizer(model: object, optimizer: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer or None, got {describe(optimizer)}"
        )
    # A DistributedDataParallel (or DataParallel) wrapper: use the plain model's keys.
    return model.module if isinstance(model, (DataParallel, DistributedDataParallel)) else model


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
    path = _check_path(path)
    model = _check_model_and_optimizer(model, optimizer)
    try:
        metadata_json = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"metadata must be JSON-safe (str, int, float, bool, None, lists, dicts), got {error}"
        ) from None
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


def _mismatches(path: Path, wanted: dict[str, torch.Tensor], given: dict[str, Any]) -> str:
    """Describe how the checkpoint's weights differ from the model's, or return ''."""

    def shape(value: Any) -> str:
        return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__

    def listed(keys: list[str], values: dict[str, Any]) -> str:
        shown = ", ".join(f"{key} {shape(values[key])}" for key in keys[:_SHOWN])
        return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")

    missing = [key for key in wanted if key not in given]
    unexpected = [key for key in given if key not in wanted]
    reshaped = [
        key
        for key in wanted
        if key in given
        and shape(given[key]) != shape(wanted[key])  # shapes, or tensor vs other state
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {listed(missing, wanted)}")
    if unexpected:
        problems.append(f"unexpected keys: {listed(unexpected, given)}")
    if reshaped:
        shown = ", ".join(
            f"{key} {shape(given[key])} in the file vs {shape(wanted[key])} in the model"
            for key in reshaped[:_SHOWN]
        )
        more = f" and {len(reshaped) - _SHOWN} more" if len(reshaped) > _SHOWN else ""
        problems.append(f"shape mismatches: {shown}{more}")
    if not problems:
        return ""
    return f"checkpoint {path} does not match the model: " + "; ".join(problems)


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
    path = _check_path(path)
    model = _check_model_and_optimizer(model, optimizer)
    if not isinstance(map_location, (str, torch.device)):
        raise TypeError(f"map_location must be a str or torch.device, got {describe(map_location)}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist or is not a file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(f"checkpoint {path} is truncated or corrupt: {error}") from None
    if (
        not isinstance(payload, dict)
        or payload.get("format") != FORMAT
        or not isinstance(payload.get("model"), dict)
    ):
        found = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(
            f"checkpoint {path} is not an mmlib checkpoint (format {FORMAT!r}), got {found}"
        )
    problem = _mismatches(path, model.state_dict(), payload["model"])
    if problem:
        raise ValueError(problem)
    if optimizer is not None and payload.get("optimizer") is None:
        raise ValueError(f"checkpoint {path} holds no optimizer state, but an optimizer was given")
    model.load_state_dict(payload["model"])
    if optimizer is not None:
        try:
            optimizer.load_state_dict(payload["optimizer"])
        except ValueError as error:
            raise ValueError(
                f"checkpoint {path} optimizer state does not match the optimizer: {error}"
            ) from None
    return json.loads(payload.get("metadata", "{}"))

"""Checkpoints (atomic, resumable) and the provenance every trained model records."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from camforensics.errors import InputError
from camforensics.reports.atomic import atomic_write_bytes

CHECKPOINT_FORMAT = "camforensics.checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically: a crash leaves the old file intact."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (weights only: no code is unpickled).

    Raises
    ------
    InputError
        If the file is missing or is not a camforensics checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such checkpoint file")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise InputError(f"{p}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{p}: not a camforensics checkpoint (written by another tool?)")
    return state


def git_commit(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Commit of the source tree that trains a model: ``{"commit": sha or None, "dirty": bool or None}``."""
    where = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        sha = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return {"commit": sha, "dirty": bool(dirty)}
    return {"commit": None, "dirty": None}


def resolve_torch_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else CPU; ``cpu`` / ``cuda`` as asked (``cuda`` must exist)."""
    key = name.lower()
    if key not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; choose one of ('auto', 'cpu', 'cuda')")
    if key == "auto":
        key = "cuda" if torch.cuda.is_available() else "cpu"
    if key == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked but torch sees no CUDA GPU; use --device auto or cpu")
    return torch.device(key)

"""Checkpoints (atomic, resumable) and the provenance every trained model records."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from camforensics.errors import InputError, ParameterError
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
        raise ParameterError(f"unknown device {name!r}; choose one of ('auto', 'cpu', 'cuda')")
    if key == "auto":
        key = "cuda" if torch.cuda.is_available() else "cpu"
    if key == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked but torch sees no CUDA GPU; use --device auto or cpu")
    return torch.device(key)


def open_run(out: Path, *, kind: str, settings: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    """The state to continue in run folder ``out`` (its ``last.pt``), or None for a new run; creates ``out``.

    ``settings`` are the run's hyper-parameters as a dict; a resumed run must have the same ones except
    ``epochs`` (a run may be extended).

    Raises
    ------
    ParameterError
        ``out`` holds a run and ``resume`` is false; it holds another kind of run or other settings; or ``resume``
        is asked and there is nothing to resume.
    """
    last = out / "last.pt"
    state = None
    if last.exists():
        if not resume:
            raise ParameterError(
                f"{out} already holds a training run; pass --resume to continue it or choose another folder"
            )
        state = load_checkpoint(last)
        if state.get("kind") != kind:
            raise ParameterError(f"{out} holds a {state.get('kind')!r} run, not a {kind!r} run")
        if {**state["config"], "epochs": 0} != {**settings, "epochs": 0}:
            raise ParameterError(
                f"{out}: the run was trained with other settings ({state['config']}); resume needs the same ones"
            )
    elif resume:
        raise ParameterError(f"{out}: nothing to resume (no last.pt)")
    out.mkdir(parents=True, exist_ok=True)
    return state


def restore_training(state: dict[str, Any], model: torch.nn.Module, optimizer: Any, scheduler: Any, epochs: int) -> int:
    """Load weights, optimiser, learning-rate schedule (stretched to ``epochs``) and torch's RNG from a checkpoint;
    returns the first epoch still to train."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scheduler.T_max = epochs
    torch.set_rng_state(state["torch_rng"])
    return int(state["epoch"]) + 1

"""Choosing the compute device of the classical engine: the numpy engine ("cpu") or torch on a CUDA GPU."""

from __future__ import annotations

from typing import Any

from camforensics.errors import ParameterError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
INSTALL_HINT = 'pip install "camforensics[gpu-torch]" (on a GPU machine, the CUDA build of torch from its index URL)'


def _torch_or_none() -> Any:
    try:
        import torch
    except ModuleNotFoundError:
        return None
    return torch


def _nvidia_driver_present() -> bool:
    """Cheap check for an NVIDIA driver (its device nodes), so that ``auto`` need not import torch without one."""
    import glob
    import os

    return os.path.exists("/dev/nvidiactl") or bool(glob.glob("/dev/nvidia[0-9]*")) or os.name == "nt"


def resolve_device(name: str) -> str:
    """Turn a ``--device`` choice into the device that will run: ``"cpu"`` or ``"cuda"``.

    ``"cpu"`` is the numpy engine and always available (torch is not needed). ``"auto"`` is ``"cuda"`` when torch
    is installed and sees a CUDA device, else ``"cpu"``. ``"cuda"`` (or ``"cuda:N"``) is returned when usable.

    Parameters
    ----------
    name : str
        One of ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or the ``"cuda:N"`` asked for.

    Raises
    ------
    ParameterError
        If ``name`` is unknown, or CUDA is asked for but torch is missing or sees no CUDA device.
    """
    choice = str(name).strip().lower()
    if choice == "cpu":
        return "cpu"
    is_cuda = choice == "cuda" or (choice.startswith("cuda:") and choice[5:].isdigit())
    if choice != "auto" and not is_cuda:
        raise ParameterError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")
    if choice == "auto" and not _nvidia_driver_present():
        return "cpu"  # no GPU driver: no need to import torch (about 1.5 s) to learn that
    torch = _torch_or_none()
    cuda_ok = torch is not None and torch.cuda.is_available()
    if choice == "auto":
        return "cuda" if cuda_ok else "cpu"
    if torch is None:
        raise ParameterError(f"--device {choice} needs torch, which is not installed: {INSTALL_HINT}; or use --device cpu")
    if not cuda_ok:
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ParameterError(
            f"--device {choice}: torch {torch.__version__} ({build}) sees no CUDA device; check the driver and "
            f"CUDA_VISIBLE_DEVICES, install the CUDA build of torch, or use --device cpu"
        )
    if choice.startswith("cuda:") and int(choice[5:]) >= torch.cuda.device_count():
        raise ParameterError(
            f"--device {choice}: only {torch.cuda.device_count()} CUDA device(s) visible (cuda:0..); choose another"
        )
    return choice


def describe_device(name: str) -> dict[str, Any]:
    """What runs a resolved device, for reports: engine, torch and CUDA versions, GPU name.

    Parameters
    ----------
    name : str
        A device as returned by :func:`resolve_device` (``"auto"`` is resolved first).

    Returns
    -------
    dict
        ``{"device", "engine", "torch", "cuda", "name"}``; versions are None where they do not apply.
    """
    device = resolve_device(name)
    torch = _torch_or_none()
    info: dict[str, Any] = {
        "device": device,
        "engine": "numpy" if device == "cpu" else "torch",
        "torch": None if torch is None else torch.__version__,
        "cuda": None if torch is None else torch.version.cuda,
        "name": "cpu",
    }
    if device != "cpu":
        info["name"] = torch.cuda.get_device_name(torch.device(device))
    return info


def torch_device(name: str) -> Any:
    """The ``torch.device`` a torch-backend function runs on (``"cpu"`` here means torch on the CPU).

    Raises
    ------
    ParameterError
        If ``name`` is not a torch device, or names CUDA while none is usable.
    """
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"unknown torch device {name!r}; use 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda":
        resolve_device(str(dev))  # raises the explained error when CUDA is not usable
    elif dev.type != "cpu":
        raise ParameterError(f"device {name!r} is not supported by the torch backend; use 'cpu' or 'cuda'")
    return dev

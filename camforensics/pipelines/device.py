"""The compute device of a batch: the numpy engine ("cpu") or the optional torch backend ("cuda", "cuda:N").

``"torch-cpu"`` runs the torch backend on the CPU: slower than the numpy engine, it exists so that tests on
machines without a GPU exercise the same code path as CUDA.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from camforensics.core.fingerprint import Accumulator, FingerprintAccumulator
from camforensics.core.params import FingerprintParams
from camforensics.core.residual import extract_residual
from camforensics.errors import ParameterError


def torch_device_of(device: str) -> str:
    """The torch device name behind a camforensics device ("torch-cpu" -> "cpu")."""
    return "cpu" if device == "torch-cpu" else device


def check_device(device: str) -> str:
    """Return ``device`` if it names a compute device; else raise ParameterError."""
    if device in ("cpu", "torch-cpu", "cuda") or device.startswith("cuda:"):
        return device
    raise ParameterError(f"unknown device {device!r}; choose auto, cpu or cuda (cuda:N for one of several GPUs)")


def residual_extractor(device: str) -> Callable[..., np.ndarray]:
    """``extract_residual``-compatible function (image, *, params) for the device."""
    if device == "cpu":
        return extract_residual
    from camforensics.accel import extract_residual_torch

    return functools.partial(extract_residual_torch, device=torch_device_of(device))


def new_accumulator(device: str, params: FingerprintParams) -> Accumulator:
    """An empty fingerprint accumulator on the device."""
    if device == "cpu":
        return FingerprintAccumulator(params=params)
    from camforensics.accel import FingerprintAccumulatorTorch

    return FingerprintAccumulatorTorch(params=params, device=torch_device_of(device))


def as_numpy_accumulator(acc: Accumulator) -> FingerprintAccumulator:
    """The accumulator's sums as a numpy :class:`FingerprintAccumulator` (for merging workers' shares)."""
    return acc.to_accumulator()


def describe(device: str) -> dict[str, Any]:
    """What the report says about the device (torch and CUDA versions, GPU name where torch is used)."""
    if device == "cpu":
        return {"device": "cpu", "engine": "numpy"}
    from camforensics.accel import describe_device

    return describe_device(torch_device_of(device)) | {"device": device}

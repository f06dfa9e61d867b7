"""Optional torch backend of the classical PRNU engine (residuals, fingerprints, PCE) for CUDA GPUs.

Importing this package is cheap and works without torch: :func:`resolve_device` and :func:`describe_device`
need no torch for ``"cpu"`` (the numpy engine). The torch functions are loaded on first use
(``from camforensics.accel import extract_residual_torch`` imports torch then); without torch that import fails
with the command that installs it.

Results equal the numpy engine's (:mod:`camforensics.core`) within float32 rounding; see docs/performance.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from camforensics.accel.device import DEVICE_CHOICES, describe_device, resolve_device

# Public torch-backed names -> the module that defines them (that module imports torch).
_LAZY = {
    "extract_residual_torch": "camforensics.accel.torch_residual",
    "channel_noise_torch": "camforensics.accel.torch_residual",
    "FingerprintAccumulatorTorch": "camforensics.accel.torch_fingerprint",
    "estimate_fingerprint_torch": "camforensics.accel.torch_fingerprint",
    "pce_torch": "camforensics.accel.torch_pce",
}

__all__ = [
    "DEVICE_CHOICES",
    "FingerprintAccumulatorTorch",
    "channel_noise_torch",
    "describe_device",
    "estimate_fingerprint_torch",
    "extract_residual_torch",
    "pce_torch",
    "resolve_device",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        from camforensics.accel.device import INSTALL_HINT

        raise ImportError(f"camforensics.accel.{name} needs torch, which is not installed: {INSTALL_HINT}") from None
    globals()[name] = value
    return value

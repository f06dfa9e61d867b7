"""The engine's real 2-D FFTs: scipy.fft's pocketfft, called without importing scipy.fft.

``import scipy.fft`` costs 0.15-0.25 s of CPU before the first transform: its array-API layer clones the numpy
namespace, which imports numpy.f2py, numpy.testing, numpy.ma and numpy.polynomial, and its fftlog pulls in
scipy.special. For numpy arrays, ``scipy.fft.rfft2`` and ``irfft2`` are thin wrappers around two functions of one
compiled extension, pocketfft's ``r2c`` and ``c2r`` (``scipy/fft/_pocketfft/pypocketfft``). This module loads that
extension from its file (about 10 ms; scipy's package ``__init__`` is light, scipy.fft's is not run), registered
under its own name so a later ``import scipy.fft`` uses the same module, and calls it with the arguments scipy.fft
passes: the same code on the same data, so the same results bit for bit (``tests/test_fft.py``). Where the
extension is missing or refuses the call (another scipy's layout), ``scipy.fft`` itself is used.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

_NAME = "scipy.fft._pocketfft.pypocketfft"
_module: list[Any] = []  # [the extension, or None when it could not be loaded]; filled on first use


def _load() -> Any:
    """The pocketfft extension module, or None."""
    if _NAME in sys.modules:  # scipy.fft was imported already: its own module
        return sys.modules[_NAME]
    try:
        import importlib.machinery
        import importlib.util

        import scipy

        folder = os.path.join(os.path.dirname(scipy.__file__), "fft", "_pocketfft")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "pypocketfft" + suffix)
            if os.path.isfile(path):
                break
        else:
            return None
        loader = importlib.machinery.ExtensionFileLoader(_NAME, path)
        spec = importlib.util.spec_from_file_location(_NAME, path, loader=loader)
        if spec is None:
            return None
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        if not all(callable(getattr(module, f, None)) for f in ("r2c", "c2r")):
            return None
        sys.modules.setdefault(_NAME, module)
        return sys.modules[_NAME]
    except Exception:  # noqa: BLE001 - any failure: scipy.fft does the work
        return None


def _pocketfft() -> Any:
    if not _module:
        _module.append(_load())
    return _module[0]


def _disable() -> None:
    """Use scipy.fft from now on (the extension refused a call as scipy.fft of this version makes it)."""
    _module[:] = [None]


def backend() -> str:
    """``"pocketfft"`` (the extension called directly) or ``"scipy.fft"``."""
    return "pocketfft" if _pocketfft() is not None else "scipy.fft"


def _threads(workers: int) -> int:
    """scipy.fft's ``workers`` rule: negative counts back from the number of cores (-1: all of them)."""
    n = os.cpu_count() or 1
    if workers < 0:
        if workers < -n:
            raise ValueError(f"workers value out of range; got {workers}, must not be less than {-n}")
        return workers + 1 + n
    if workers == 0:
        raise ValueError("workers must not be zero")
    return workers


def _floating(x: Any) -> np.ndarray:
    """The array as scipy.fft hands it to pocketfft: floating (float16 -> float32, integers -> float64), native
    byte order, aligned."""
    a = np.asarray(x)
    if a.dtype == np.float16:
        return a.astype(np.float32)
    if a.dtype.kind not in "fc":
        return a.astype(np.float64)
    if a.dtype.byteorder not in "=|" or not a.flags.aligned:
        return np.array(a, dtype=a.dtype.newbyteorder("="), copy=True)
    return a


def rfft2(x: Any, *, workers: int = -1) -> np.ndarray:
    """``scipy.fft.rfft2(x, workers=workers)``: the half-plane DFT over the last two axes of a real array."""
    a = _floating(x)
    pocketfft = _pocketfft()
    if pocketfft is not None and a.ndim >= 2 and a.dtype.kind == "f" and min(a.shape[-2:]) > 0:
        try:
            return pocketfft.r2c(a, (a.ndim - 2, a.ndim - 1), True, 0, None, _threads(workers))
        except TypeError:
            _disable()
    import scipy.fft

    return scipy.fft.rfft2(x, workers=workers)


def irfft2(x: Any, s: tuple[int, int], *, workers: int = -1) -> np.ndarray:
    """``scipy.fft.irfft2(x, s=s, workers=workers)``: the real array of shape ``s`` (over the last two axes)
    whose half-plane DFT is ``x``, scaled by ``1 / (s[0] * s[1])``."""
    a = _floating(x)
    h, w = int(s[0]), int(s[1])
    pocketfft = _pocketfft()
    if pocketfft is not None and a.ndim >= 2 and a.dtype.kind == "c" and a.shape[-2:] == (h, w // 2 + 1) and w > 0:
        try:
            return pocketfft.c2r(a, (a.ndim - 2, a.ndim - 1), w, False, 2, None, _threads(workers))
        except TypeError:
            _disable()
    import scipy.fft

    return scipy.fft.irfft2(x, s=(h, w), workers=workers)

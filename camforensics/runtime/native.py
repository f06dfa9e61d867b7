"""The optional native kernels (``camforensics/runtime/_kernels.c``): the periodic DWT passes and the local Wiener rule.

The extension is built by ``pip install`` when a C compiler is present; it is loaded with ctypes, whose calls let go
of the GIL, so the engine's row-strip threads and image threads run the kernels in parallel. Without it, or with
``CAMFORENSICS_NATIVE=0`` in the environment, :mod:`camforensics.core.dwt` and :mod:`camforensics.core.denoise` use
their OpenCV implementation; both give the same results within float32 rounding (tested against each other and
against pywt). :func:`engine` names the one in use; reports record it.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
from collections.abc import Callable

import numpy as np

from camforensics.errors import ParameterError
from camforensics.runtime import threads

VERSION = 2  # cf_version() of the kernels this module calls
ENV = "CAMFORENSICS_NATIVE"
_ptr = ctypes.c_void_p
_int = ctypes.c_int

_SIGNATURES = {
    "cf_dwt_cols": [_ptr, _int, _int, _ptr, _ptr, _int, _int, _ptr, _ptr, _int],
    "cf_dwt_rows": [_ptr, _int, _int, _ptr, _ptr, _int, _int, _ptr, _ptr, _int],
    "cf_idwt_cols": [_ptr, _ptr, _int, _int, _ptr, _int, _int, _ptr, _ptr, _int],
    "cf_idwt_rows": [_ptr, _ptr, _int, _int, _ptr, _int, _int, _ptr, _ptr, _int],
    "cf_wiener": [_ptr, _ptr, _int, _int, _int, _int, ctypes.c_float, _ptr, _int, _int],
    "cf_fold": [_ptr, ctypes.c_long, _ptr, ctypes.c_long, _ptr, _ptr, _int, _int, _int],
}
# Kernels that a library of this version built before they existed lacks: used where present.
_OPTIONAL = {
    "cf_cfa_centre": [_ptr, _int, _ptr, _ptr, _int, _int],
    "cf_grey_u8": [_ptr, ctypes.c_long, ctypes.c_long, _int, _ptr, _int, _int, ctypes.c_float, ctypes.c_float, ctypes.c_float],
}


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    try:
        spec = importlib.util.find_spec("camforensics.runtime._kernels")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
        lib.cf_version.restype = _int
        if lib.cf_version() != VERSION:
            return None
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, _int
        for name, argtypes in _OPTIONAL.items():  # newer kernels: a build without them still serves
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes, fn.restype = argtypes, _int
    except (OSError, AttributeError):
        return None
    return lib


def available() -> bool:
    """Whether the native kernels are built, loadable and not switched off by ``CAMFORENSICS_NATIVE=0``."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off") and _library() is not None


def engine() -> str:
    """``"native"`` or ``"opencv"``: the implementation of the DWT and the Wiener rule in use."""
    return "native" if available() else "opencv"


def _call(fn: Callable[..., int], *args) -> None:
    status = fn(*args)
    if status != 0:
        raise RuntimeError(f"native kernel {fn.__name__} failed with status {status}")


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


@functools.lru_cache(maxsize=32)
def _filter(values: tuple[float, ...]) -> np.ndarray:
    f = np.array(values, np.float32)
    f.setflags(write=False)
    return f


def _analysis(kernel: str, x: np.ndarray, band: tuple[int, int], n_rows: int, lo_f, hi_f) -> tuple[np.ndarray, np.ndarray]:
    """Run an analysis kernel over ``n_rows`` output rows in strips: two new bands of shape ``band``."""
    h, w = x.shape
    lo, hi = np.empty(band, np.float32), np.empty(band, np.float32)
    fl, fh, fn = _filter(lo_f), _filter(hi_f), getattr(_library(), kernel)
    threads.for_row_strips(
        lambda r0, r1: _call(fn, x.ctypes.data, h, w, lo.ctypes.data, hi.ctypes.data, r0, r1, fl.ctypes.data,
                             fh.ctypes.data, len(fl)),
        n_rows, x.size,
    )  # fmt: skip
    return lo, hi


def _synthesis(kernel: str, lo: np.ndarray | None, hi: np.ndarray, scale: tuple[int, int], lo_g, hi_g) -> np.ndarray:
    """Run a synthesis kernel: a new array of ``hi``'s shape times ``scale`` (rows, columns) from two bands, the
    output rows in strips; ``lo`` None counts as zeros."""
    hi = _f32(hi)
    lo = None if lo is None else _f32(lo)
    h, w = hi.shape
    if lo is not None and lo.shape != hi.shape:
        raise ParameterError(f"bands of different shapes {lo.shape} and {hi.shape}")
    out = np.empty((scale[0] * h, scale[1] * w), np.float32)
    gl, gh, fn = _filter(lo_g), _filter(hi_g), getattr(_library(), kernel)
    lo_ptr = None if lo is None else lo.ctypes.data
    threads.for_row_strips(
        lambda r0, r1: _call(fn, lo_ptr, hi.ctypes.data, h, w, out.ctypes.data, r0, r1, gl.ctypes.data,
                             gh.ctypes.data, len(gl)),
        out.shape[0], out.size,
    )  # fmt: skip
    return out


def analysis_cols(x: np.ndarray, lo_f: tuple[float, ...], hi_f: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Periodic decimating filtering along axis 0 of an (h, w) array (h even): (lo, hi), each (h/2, w)."""
    x = _f32(x)
    h, w = x.shape
    return _analysis("cf_dwt_cols", x, (h // 2, w), h // 2, lo_f, hi_f)


def analysis_rows(x: np.ndarray, lo_f: tuple[float, ...], hi_f: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Periodic decimating filtering along axis 1 of an (h, w) array (w even): (lo, hi), each (h, w/2)."""
    x = _f32(x)
    h, w = x.shape
    return _analysis("cf_dwt_rows", x, (h, w // 2), h, lo_f, hi_f)


def synthesis_cols(lo: np.ndarray | None, hi: np.ndarray, lo_g: tuple[float, ...], hi_g: tuple[float, ...]) -> np.ndarray:
    """Inverse of :func:`analysis_cols`: (2h, w) from lo and hi (h, w); ``lo`` None counts as zeros."""
    return _synthesis("cf_idwt_cols", lo, hi, (2, 1), lo_g, hi_g)


def synthesis_rows(lo: np.ndarray | None, hi: np.ndarray, lo_g: tuple[float, ...], hi_g: tuple[float, ...]) -> np.ndarray:
    """Inverse of :func:`analysis_rows`: (h, 2w) from lo and hi (h, w); ``lo`` None counts as zeros."""
    return _synthesis("cf_idwt_rows", lo, hi, (1, 2), lo_g, hi_g)


@functools.lru_cache(maxsize=8)
def _radii(windows: tuple[int, ...]) -> np.ndarray:
    if not windows or any(w < 1 or w % 2 == 0 for w in windows):
        raise ParameterError(f"Wiener windows must be odd sizes >= 1, got {windows}")
    r = np.array(sorted({w // 2 for w in windows}), np.int32)
    r.setflags(write=False)
    return r


def wiener(coeffs: np.ndarray, noise_var: float, windows: tuple[int, ...], *, noise: bool) -> np.ndarray:
    """The local Wiener rule of :func:`camforensics.core.denoise.wiener_noise_gain` (``noise`` False: the gain
    ``s2 / max(min_w mean_w(c^2), s2)``) or of :func:`~camforensics.core.denoise.wiener_noise` (``noise`` True:
    ``c`` times that gain), as a new float32 array, on row strips in threads."""
    c = _f32(coeffs)
    if c.ndim != 2:
        raise ParameterError(f"expected a 2-D array, got shape {c.shape}")
    h, w = c.shape
    out = np.empty((h, w), np.float32)
    if c.size == 0:
        return out
    radii, lib = _radii(tuple(int(x) for x in windows)), _library()
    s2 = float(np.float32(noise_var))
    threads.for_row_strips(
        lambda r0, r1: _call(lib.cf_wiener, c.ctypes.data, out.ctypes.data, h, w, r0, r1, s2, radii.ctypes.data,
                             len(radii), int(noise)),
        h, c.size,
    )  # fmt: skip
    return out


def _optional_kernel(name: str) -> ctypes._CFuncPtr | None:
    """The kernel ``name`` of :data:`_OPTIONAL` where the built library has it, else None."""
    return getattr(_library(), name, None) if available() else None


def cfa_centre(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> bool:
    """In place on a C-contiguous float32 (h, w) array ``a`` (h, w even): ``a[y, x] = (a[y, x] - rows[y // 2, y % 2,
    x % 2]) - cols[y % 2, x]`` (``rows`` (h/2, 2, 2) and ``cols`` (2, w) float32), in one pass on row strips: the bits
    of numpy's ``lattices -= rows; lattices -= cols`` on the (h/2, 2, w/2, 2) view of ``a``
    (:func:`camforensics.core.residual.zero_mean_cfa`). False, with nothing done, where the kernel is not built."""
    fn = _optional_kernel("cf_cfa_centre")
    if fn is None:
        return False
    h, w = a.shape
    if a.dtype != np.float32 or not a.flags.c_contiguous or h % 2 or w % 2:
        raise ParameterError("cfa_centre needs a C-contiguous float32 array with even sides")
    r = np.ascontiguousarray(rows, dtype=np.float32).reshape(h // 2, 2, 2)
    c = np.ascontiguousarray(cols, dtype=np.float32).reshape(2, w)
    threads.for_row_strips(lambda r0, r1: _call(fn, a.ctypes.data, w, r.ctypes.data, c.ctypes.data, r0, r1), h, a.size)
    return True


def grey_u8(image: np.ndarray, weights: tuple[float, float, float]) -> np.ndarray | None:
    """Grey intensities of an HxWx3 uint8 image (any row stride; the samples of a pixel consecutive) as
    :func:`camforensics.core.residual.grey_from_channels` computes them from its three channels, the same bits in one
    pass on row strips (``tests/test_core_residual.py``); None where the kernel is not built here."""
    fn = _optional_kernel("cf_grey_u8")
    if fn is None:
        return None
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.strides[2] != 1 or image.strides[1] < 3:
        raise ParameterError(f"grey_u8 needs an HxWx3 uint8 image with its samples side by side, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    rs, ps = image.strides[:2]
    if rs < 0:
        image = np.ascontiguousarray(image)
        rs, ps = image.strides[:2]
    out = np.empty((h, w), np.float32)
    w0, w1, w2 = (float(np.float32(x)) for x in weights)
    threads.for_row_strips(
        lambda r0, r1: _call(fn, image.ctypes.data, rs, ps, w, out.ctypes.data, r0, r1, w0, w1, w2), h, h * w
    )
    return out


def _rows_view(a: np.ndarray) -> tuple[np.ndarray, int]:
    """A float32 2-D array whose rows are contiguous (a copy only when they are not), and its row stride in elements."""
    if a.dtype != np.float32 or a.ndim != 2 or a.strides[1] != 4 or a.strides[0] % 4:
        a = np.ascontiguousarray(a, dtype=np.float32)
    return a, a.strides[0] // 4


def fold(noise: np.ndarray, weight: np.ndarray, num: np.ndarray, den: np.ndarray) -> None:
    """The fingerprint's sums in place, ``num += noise * weight`` and ``den += weight**2``, in one pass on row strips
    (``num`` and ``den`` C-contiguous float32; ``noise`` and ``weight`` may be views with padded rows)."""
    if not (num.flags.c_contiguous and den.flags.c_contiguous and num.dtype == den.dtype == np.float32):
        raise ParameterError("fold needs C-contiguous float32 sums")
    if not (noise.shape == weight.shape == num.shape == den.shape) or num.ndim != 2:
        raise ParameterError(f"fold needs 2-D arrays of one shape, got {noise.shape}, {weight.shape}, {num.shape}, {den.shape}")
    n, n_stride = _rows_view(noise)
    g, g_stride = _rows_view(weight)
    h, w = num.shape
    lib = _library()
    threads.for_row_strips(
        lambda r0, r1: _call(lib.cf_fold, n.ctypes.data, n_stride, g.ctypes.data, g_stride, num.ctypes.data,
                             den.ctypes.data, w, r0, r1),
        h, num.size,
    )  # fmt: skip


@functools.lru_cache(maxsize=1)
def _cross_power_kernel() -> Callable[..., int] | None:
    """``cf_cross_power`` where the kernels have it (an older build does not: numpy then) and it gives numpy's bits
    here (checked once on a small block: it is used only where it does)."""
    lib = _library() if available() else None
    fn = getattr(lib, "cf_cross_power", None) if lib is not None else None
    if fn is None:
        return None
    fn.argtypes, fn.restype = [_ptr, ctypes.c_long, _ptr, ctypes.c_long, _ptr, _ptr, ctypes.c_long, ctypes.c_long], _int
    rng = np.random.default_rng(0)
    q, k = (np.ascontiguousarray((rng.standard_normal((3, 74)) * 1e3).astype(np.float32).view(np.complex64)) for _ in range(2))
    p, power = np.empty((3, 37), np.complex64), np.empty(74)
    if fn(q.ctypes.data, 37, k.ctypes.data, 37, p.ctypes.data, power.ctypes.data, 3, 37) != 0:
        return None
    want = np.multiply(q, k)
    flat = want.view(np.float32)
    sums = np.einsum("ij,ij->j", flat, flat, dtype=np.float64).reshape(37, 2).sum(axis=1)
    if not (np.array_equal(p.view(np.uint32), want.view(np.uint32)) and np.array_equal(power[:37].view(np.uint64), sums.view(np.uint64))):
        return None
    return fn


def cross_power(q: np.ndarray, k: np.ndarray, out: np.ndarray, power: np.ndarray | None) -> bool:
    """``out = q * k`` for 2-D complex64 blocks of rows (rows of ``q`` and ``k`` contiguous, ``out`` C-contiguous),
    and with ``power`` (float64 scratch of at least twice the columns) ``power[:cols]`` = the float64 sum over the
    rows of ``|out|**2`` as ``np.einsum("ij,ij->j", v, v, dtype=np.float64).reshape(-1, 2).sum(axis=1)`` of its
    float32 view ``v`` gives it: numpy's results bit for bit, in one pass (numpy's einsum alone took 10 ms of CPU per
    fingerprint of 12 MP, about as long as the product; the two in one pass 12.5 ms instead of 23 ms). False where
    the kernel is not available (the caller computes it with numpy)."""
    fn = _cross_power_kernel()
    if fn is None:
        return False
    rows, cols = out.shape
    if not (q.shape == k.shape == out.shape and q.dtype == k.dtype == out.dtype == np.complex64 and out.flags.c_contiguous):
        raise ParameterError("cross_power needs complex64 blocks of one shape and a C-contiguous output")
    if q.strides[1] != 8 or k.strides[1] != 8 or q.strides[0] % 8 or k.strides[0] % 8:
        raise ParameterError("cross_power needs blocks whose rows are contiguous")
    if power is not None and (power.dtype != np.float64 or not power.flags.c_contiguous or power.size < 2 * cols):
        raise ParameterError("cross_power needs a contiguous float64 scratch of twice the columns")
    status = fn(q.ctypes.data, q.strides[0] // 8, k.ctypes.data, k.strides[0] // 8, out.ctypes.data,
                power.ctypes.data if power is not None else None, rows, cols)  # fmt: skip
    return status == 0

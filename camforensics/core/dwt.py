"""Periodic 2-D discrete wavelet transform on OpenCV's SIMD filters, equal to ``pywt.wavedec2`` / ``waverec2``
with ``mode="periodization"`` on arrays whose sides are multiples of ``2**levels``.

Each one-dimensional pass is written in polyphase form: the ``L``-tap decimating filter becomes two ``L/2``-tap
correlations of the even and odd samples (and the interpolating inverse two per output parity), so no product is
computed only to be thrown away. The correlations run in ``cv2.filter2D`` (vectorised, multi-threaded by OpenCV);
rows are split by parity as strided views without copies. The periodic wrap-around, which ``filter2D`` cannot do
along columns, is added afterwards to the few outputs at each edge. pywt's filter orientation was established by
impulse responses and is checked against pywt itself in the tests (several wavelets, sizes and levels).

Where the optional native kernels are built (:mod:`camforensics.runtime.native`), ``dwt2`` and ``idwt2`` run them
instead: the same passes in C, without the OpenCV calls' intermediate arrays.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pywt

from camforensics.errors import ParameterError
from camforensics.runtime import native
from camforensics.runtime.threads import for_col_strips, for_row_strips

Taps = tuple[tuple[int, float], ...]  # (offset d, weight): out[k] += weight * src[(k + d) mod n]


@lru_cache(maxsize=16)
def _filters(wavelet: str) -> tuple[Taps, Taps, Taps, Taps, Taps, Taps, Taps, Taps]:
    """Polyphase taps of ``wavelet``: analysis (lo, hi) x (even, odd input samples), then synthesis
    (lo, hi) x (even, odd output samples)."""
    w = pywt.Wavelet(wavelet)
    n = w.dec_len
    if n % 2:
        raise ParameterError(f"wavelet {wavelet!r} has an odd filter length {n}")
    s = n // 2  # analysis: y[k] = sum_j f[j] x[2k + s - j]
    t = n // 2 - 1  # synthesis: x[n] = sum_k c[k] g[n - 2k + t]

    def analysis(f, parity):
        # x[2k + m] with m = s - j: even m reads even sample k + m/2, odd m reads odd sample k + (m - 1)/2.
        return tuple(((s - j - parity) // 2, float(f[j])) for j in range(n) if (s - j) % 2 == parity)

    def synthesis(g, parity):
        # Output 2m + parity gets c[k] * g[i] for i = 2(m - k) + parity + t, i.e. k = m + (parity + t - i) / 2.
        return tuple(((parity + t - i) // 2, float(g[i])) for i in range(n) if (i - parity - t) % 2 == 0)

    return (
        analysis(w.dec_lo, 0), analysis(w.dec_lo, 1), analysis(w.dec_hi, 0), analysis(w.dec_hi, 1),
        synthesis(w.rec_lo, 0), synthesis(w.rec_lo, 1), synthesis(w.rec_hi, 0), synthesis(w.rec_hi, 1),
    )  # fmt: skip


@lru_cache(maxsize=16)
def _bank(wavelet: str) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """pywt's (dec_lo, dec_hi, rec_lo, rec_hi) of ``wavelet``, for the native kernels."""
    w = pywt.Wavelet(wavelet)
    if w.dec_len % 2:
        raise ParameterError(f"wavelet {wavelet!r} has an odd filter length {w.dec_len}")
    return tuple(w.dec_lo), tuple(w.dec_hi), tuple(w.rec_lo), tuple(w.rec_hi)


@lru_cache(maxsize=512)
def _plan(taps: Taps, axis: int, n: int) -> tuple[np.ndarray, tuple[int, int], tuple[tuple[int, int, np.float32], ...]]:
    """What :func:`_correlate` needs for ``taps`` along ``axis`` of length ``n``: the OpenCV kernel, its anchor,
    and the periodic wrap-around terms ``(k, j, weight)`` (``out[k] += weight * src[j]``) that the zero-padded
    filter misses at the edges. Cached: the same few filters and sizes recur for every image."""
    lo = min(0, min(d for d, _ in taps))
    hi = max(0, max(d for d, _ in taps))
    kernel = np.zeros(hi - lo + 1, np.float32)
    for d, weight in taps:
        kernel[d - lo] += weight
    if axis == 0:
        kernel, anchor = kernel[:, None], (0, -lo)
    else:
        kernel, anchor = kernel[None, :], (-lo, 0)
    kernel.setflags(write=False)
    wraps = tuple(
        (k, (k + d) % n, np.float32(weight))
        for k in sorted(set(range(min(n, -lo))) | set(range(max(0, n - hi), n)))
        for d, weight in taps
        if not 0 <= k + d < n
    )
    return kernel, anchor, wraps


def _correlate(
    src: np.ndarray, taps: Taps, axis: int, out: np.ndarray | None = None, *, accumulate: bool = False
) -> np.ndarray:
    """``out[k] (+)= sum_d w_d * src[(k + d) mod n]`` along ``axis`` of a 2-D float32 array (periodic), in
    threads on strips across the filter's direction (no context needed). ``out`` (may be a strided view)
    receives the result, or has it added with ``accumulate``; a new array when None."""
    kernel, anchor, wraps = _plan(taps, axis, src.shape[axis])
    if out is None:
        if accumulate:
            raise ParameterError("accumulate needs an out array")
        out = np.empty(src.shape, np.float32)

    def run(s: np.ndarray, o: np.ndarray) -> None:
        if accumulate:
            part = cv2.filter2D(s, cv2.CV_32F, kernel, anchor=anchor, borderType=cv2.BORDER_CONSTANT)
            cv2.add(o, part, dst=o)
        else:
            cv2.filter2D(s, cv2.CV_32F, kernel, dst=o, anchor=anchor, borderType=cv2.BORDER_CONSTANT)

    if axis == 0:
        for_col_strips(lambda c0, c1: run(src[:, c0:c1], out[:, c0:c1]), src.shape[1], src.size)
    else:
        for_row_strips(lambda r0, r1: run(src[r0:r1], out[r0:r1]), src.shape[0], src.size)
    # filter2D read zeros beyond the edges: add the wrapped-around samples to the outputs that reached them.
    for k, j, weight in wraps:
        if axis == 0:
            out[k] += weight * src[j]
        else:
            out[:, k] += weight * src[:, j]
    return out


def _split(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Even and odd samples along ``axis``: row views (no copy), or column copies made on row strips."""
    if axis == 0:
        return x[0::2], x[1::2]
    h, w = x.shape
    even = np.empty((h, w // 2), np.float32)
    odd = np.empty((h, w // 2), np.float32)

    def copy(r0: int, r1: int) -> None:
        even[r0:r1] = x[r0:r1, 0::2]
        odd[r0:r1] = x[r0:r1, 1::2]

    for_row_strips(copy, h, x.size)
    return even, odd


def _analysis(x: np.ndarray, axis: int, filters) -> tuple[np.ndarray, np.ndarray]:
    lo_e, lo_o, hi_e, hi_o = filters[:4]
    even, odd = _split(x, axis)
    lo = _correlate(odd, lo_o, axis, _correlate(even, lo_e, axis), accumulate=True)
    hi = _correlate(odd, hi_o, axis, _correlate(even, hi_e, axis), accumulate=True)
    return lo, hi


def _synthesis(lo: np.ndarray | None, hi: np.ndarray | None, axis: int, filters) -> np.ndarray:
    """Inverse of one 1-D level along ``axis``; a ``None`` band counts as zeros."""
    lo_e, lo_o, hi_e, hi_o = filters[4:]
    ref = lo if lo is not None else hi
    h, w = ref.shape
    out = np.empty((2 * h, w) if axis == 0 else (h, 2 * w), np.float32)
    if axis == 0:
        targets = (out[0::2], out[1::2])  # row views: the filters write into them directly
    else:
        targets = (np.empty((h, w), np.float32), np.empty((h, w), np.float32))
    for target, f_lo, f_hi in zip(targets, (lo_e, lo_o), (hi_e, hi_o)):
        if lo is not None:
            _correlate(lo, f_lo, axis, target)
        if hi is not None:
            _correlate(hi, f_hi, axis, target, accumulate=lo is not None)
    if axis == 1:
        even, odd = targets

        def interleave(r0: int, r1: int) -> None:
            out[r0:r1, 0::2] = even[r0:r1]
            out[r0:r1, 1::2] = odd[r0:r1]

        for_row_strips(interleave, h, out.size)
    return out


def dwt2(x: np.ndarray, wavelet: str) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One level of ``pywt.dwt2(x, wavelet, mode="periodization")`` for a float32 array with even sides."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] % 2 or a.shape[1] % 2:
        raise ParameterError(f"dwt2 needs a 2-D array with even sides, got shape {a.shape}")
    if native.available():
        dec_lo, dec_hi, _, _ = _bank(wavelet)
        lo0, hi0 = native.analysis_cols(a, dec_lo, dec_hi)
        ll, lh = native.analysis_rows(lo0, dec_lo, dec_hi)
        del lo0
        hl, hh = native.analysis_rows(hi0, dec_lo, dec_hi)
        return ll, (hl, lh, hh)
    f = _filters(wavelet)
    lo0, hi0 = _analysis(a, 0, f)  # axis 0 first: its even/odd rows are free views
    ll, lh = _analysis(lo0, 1, f)
    del lo0
    hl, hh = _analysis(hi0, 1, f)
    del hi0
    # pywt's names: cH = lo along axis 1, hi along axis 0; cV = hi along axis 1, lo along axis 0.
    return ll, (hl, lh, hh)


def idwt2(ca: np.ndarray | None, details: tuple[np.ndarray, np.ndarray, np.ndarray], wavelet: str) -> np.ndarray:
    """Inverse of :func:`dwt2` (``pywt.idwt2(..., mode="periodization")``); ``ca=None`` counts as zeros."""
    ch, cv, cd = (np.asarray(d, dtype=np.float32) for d in details)
    if native.available():
        _, _, rec_lo, rec_hi = _bank(wavelet)
        lo0 = native.synthesis_rows(None if ca is None else np.asarray(ca, dtype=np.float32), cv, rec_lo, rec_hi)
        hi0 = native.synthesis_rows(ch, cd, rec_lo, rec_hi)
        return native.synthesis_cols(lo0, hi0, rec_lo, rec_hi)
    f = _filters(wavelet)
    lo0 = _synthesis(None if ca is None else np.asarray(ca, dtype=np.float32), cv, 1, f)
    hi0 = _synthesis(ch, cd, 1, f)
    return _synthesis(lo0, hi0, 0, f)


def wavedec2(x: np.ndarray, wavelet: str, level: int) -> list:
    """``pywt.wavedec2(x, wavelet, mode="periodization", level=level)`` in float32, for sides that are multiples
    of ``2**level``: ``[cA_level, (cH, cV, cD)_level, ..., (cH, cV, cD)_1]``."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2 or level < 0 or a.shape[0] % 2**level or a.shape[1] % 2**level:
        raise ParameterError(f"wavedec2 needs sides that are multiples of 2**{level}, got shape {a.shape}")
    details = []
    for _ in range(level):
        a, d = dwt2(a, wavelet)
        details.append(d)
    return [a, *details[::-1]]


def waverec2(coeffs: list, wavelet: str, *, zero_approximation: bool = False) -> np.ndarray:
    """Inverse of :func:`wavedec2` (``pywt.waverec2(..., mode="periodization")``), float32.

    With ``zero_approximation`` the coarsest approximation band is taken as zeros (without reading it).
    """
    a = None if zero_approximation else coeffs[0]
    for details in coeffs[1:]:
        a = idwt2(a, details, wavelet)
    return a

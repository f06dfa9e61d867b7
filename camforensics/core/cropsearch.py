"""Where a cropped, scaled or turned query sits on the sensor (Goljan & Fridrich 2008).

A query smaller than a fingerprint is a crop at an unknown position: its signal (residual times intensity) is
zero-padded to the fingerprint's size and correlated with the fingerprint over every offset by FFT; the
PCE is the peak against the correlation energy outside a small square around it, and its false-alarm
probability is that of the largest of the N offsets searched, so the decision threshold rises with N. A
downscaled query is first resampled to sensor resolution at each scale of a grid (the scale search outside, the
crop search inside, as in the paper). Turned or mirrored queries are the 8 elements of the dihedral group Dih4.

References
----------
Goljan, Fridrich, "Camera identification from cropped and scaled images", Proc. SPIE 6819, Security,
Forensics, Steganography, and Watermarking of Multimedia Contents X, 2008.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from camforensics.core.pce import PceResult, Spectrum, log10_false_alarm, pce_result
from camforensics.errors import ParameterError
from camforensics.runtime import fft

# Smallest side (pixels, sensor resolution) of a query searched as a crop: below it the residual holds too few
# PRNU samples to reach any useful PCE and the wavelet denoiser (4 levels) has almost nothing to work on.
MIN_CROP_SIDE = 64

# Dih4 elements as (rotation in degrees counter-clockwise, mirrored): flip left-right first, then rotate (the
# order of camforensics.io.patches.apply_dih4). The stored order comes first.
DIH4 = tuple((90 * (k % 4), k >= 4) for k in range(8))


def orient(a: np.ndarray, rotation: int, mirrored: bool = False) -> np.ndarray:
    """``a`` flipped left-right (when ``mirrored``), then turned ``rotation`` degrees counter-clockwise (a view)."""
    if mirrored:
        a = a[:, ::-1]
    return np.rot90(a, (rotation // 90) % 4)


def sensor_shape(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    """Size in sensor pixels of a query of ``shape`` whose pixels are ``scale`` times the sensor's (0 < scale)."""
    return max(1, round(shape[0] / scale)), max(1, round(shape[1] / scale))


def to_sensor_scale(a: np.ndarray, scale: float) -> np.ndarray:
    """``a`` resampled to sensor resolution (bicubic; ``a`` itself when ``scale`` is 1). Not modified."""
    if scale == 1.0:
        return a
    h, w = sensor_shape(a.shape, scale)
    return cv2.resize(np.ascontiguousarray(a, dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def padded_spectrum(signal: np.ndarray, shape: tuple[int, int]) -> Spectrum:
    """:class:`Spectrum` of the zero-mean ``signal`` placed at the top-left of a zero array of ``shape``.

    Computed without building the padded array: a real FFT of the signal's rows, then a column FFT that pads
    to ``shape[0]`` (the zero rows cost nothing in the first pass).
    """
    a = np.asarray(signal, dtype=np.float32)
    h, w = a.shape
    if h > shape[0] or w > shape[1]:
        raise ParameterError(f"a {w}x{h} signal does not fit a {shape[1]}x{shape[0]} plane")
    centred = a - np.float32(a.mean(dtype=np.float64))
    norm = float(np.sqrt(np.einsum("ij,ij->", centred, centred, dtype=np.float64)))
    import scipy.fft  # crop searches only: the aligned search never imports it (camforensics.runtime.fft)

    rows = scipy.fft.rfft(centred, n=shape[1], axis=1, workers=-1)
    f = scipy.fft.fft(rows, n=shape[0], axis=0, workers=-1, overwrite_x=True).astype(np.complex64, copy=False)
    return Spectrum(f=f, norm=norm, shape=(int(shape[0]), int(shape[1])))


def offset_window(
    query_shape: tuple[int, int],
    reference_shape: tuple[int, int],
    *,
    anchor: str | tuple[int, int] = "any",
    shift_range: tuple[int, int] = (0, 0),
) -> tuple[slice, slice] | None:
    """Offsets (rows, columns of the query's top-left corner) searched for a crop; None when none is admissible.

    ``anchor="any"`` allows every offset that keeps the query inside the reference; ``"centre"``, ``"corner"`` (top
    left) or an explicit ``(y, x)`` allow ``+-shift_range`` around that offset, clipped to the admissible ones.
    """
    (h, w), (hh, ww) = query_shape, reference_shape
    max_y, max_x = hh - h, ww - w
    if max_y < 0 or max_x < 0:
        return None
    if anchor == "any":
        return slice(0, max_y + 1), slice(0, max_x + 1)
    if anchor == "centre":
        ay, ax = max_y // 2, max_x // 2
    elif anchor == "corner":
        ay, ax = 0, 0
    else:
        ay, ax = int(anchor[0]), int(anchor[1])  # type: ignore[index]
    y0, y1 = max(ay - shift_range[0], 0), min(ay + shift_range[0], max_y)
    x0, x1 = max(ax - shift_range[1], 0), min(ax + shift_range[1], max_x)
    if y0 > y1 or x0 > x1:
        return None
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def window_size(window: tuple[slice, slice]) -> int:
    """Number of offsets in a (possibly strided) window of offsets."""
    return len(range(window[0].start, window[0].stop, window[0].step or 1)) * len(
        range(window[1].start, window[1].stop, window[1].step or 1)
    )


def crop_pce(
    query: Spectrum,
    query_shape: tuple[int, int],
    reference: Spectrum,
    window: tuple[slice, slice],
    *,
    exclusion: int = 11,
    scratch: np.ndarray | None = None,
) -> PceResult:
    """PCE of a zero-padded query against a reference over the offsets of ``window``.

    The correlation ``r[oy, ox] = sum q(y, x) k(y + oy, x + ox)`` is computed for every circular offset by one
    inverse FFT; the peak is the maximum within ``window`` (see :func:`offset_window`); the energy is the mean of
    ``r**2`` over the whole plane outside an ``exclusion`` square centred on the peak (offsets that wrap around
    pair the query with another part of the fingerprint, as unrelated as any). ``ncc`` is normalised by the
    query's norm and the fingerprint's norm scaled to the query's area.

    Parameters
    ----------
    query : Spectrum
        :func:`padded_spectrum` of the query signal at the reference's shape.
    query_shape : (int, int)
        Size of the query before padding.
    reference : Spectrum
        The fingerprint's spectrum (conjugated or not).
    window : (slice, slice)
        Offsets searched (rows, columns), within ``0..H-h`` and ``0..W-w``; slices may be strided.
    exclusion : int, keyword-only
        Odd side of the square left out of the energy.
    scratch : ndarray, optional, keyword-only
        complex64 buffer of the spectra's shape for the cross-power.

    Returns
    -------
    PceResult
        ``peak_shift`` is the offset (row, column) of the query's top-left corner in the reference, ``n_shifts``
        the number of offsets in ``window``.
    """
    return crop_pces(query, query_shape, reference, [window], exclusion=exclusion, scratch=scratch)[0]


def crop_pces(
    query: Spectrum,
    query_shape: tuple[int, int],
    reference: Spectrum,
    windows: list[tuple[slice, slice]],
    *,
    exclusion: int = 11,
    scratch: np.ndarray | None = None,
) -> list[PceResult]:
    """:func:`crop_pce` over several windows of offsets (e.g. every offset and those on the JPEG grid) from one
    correlation plane: one result per window (an empty window gives PCE 0 at its start).

    Raises
    ------
    ParameterError
        If the padded query and the reference differ in shape.
    """
    if query.shape != reference.shape:
        raise ParameterError(f"padded query {query.shape} and reference {reference.shape} differ in shape")
    hh, ww = reference.shape
    if not query.norm > 0 or not reference.norm > 0:
        return [_empty(w) for w in windows]
    prod = np.multiply(query.f, reference.conj_f(), out=scratch)  # Q conj(K): correlation at negative offsets
    np.conjugate(prod, out=prod)  # conj(Q) K: at positive offsets, r[o] = sum q(y) k(y + o)
    cc = fft.irfft2(prod, s=(hh, ww), workers=-1)
    flat = cc.ravel()
    total = float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    # Normalised at the end (the PCE does not depend on it): one multiplication instead of a pass over the plane.
    unit = query.norm * reference.norm * math.sqrt(query_shape[0] * query_shape[1] / (hh * ww))
    half = exclusion // 2
    results = []
    for window in windows:
        n_shifts = window_size(window)
        if n_shifts == 0:
            results.append(_empty(window))
            continue
        searched = cc[window]
        iy, ix = np.unravel_index(int(np.argmax(searched)), searched.shape)
        py, px = window[0].start + int(iy) * (window[0].step or 1), window[1].start + int(ix) * (window[1].step or 1)
        rows = np.unique(np.arange(py - half, py + half + 1) % hh)
        cols = np.unique(np.arange(px - half, px + half + 1) % ww)
        near = cc[np.ix_(rows, cols)].astype(np.float64)
        n_out = hh * ww - near.size
        energy = (total - float(np.sum(near * near))) / n_out if n_out > 0 else 0.0
        results.append(pce_result(float(cc[py, px]) / unit, energy / unit**2, (py, px), n_shifts))
    return results


def _empty(window: tuple[slice, slice]) -> PceResult:
    return PceResult(pce=0.0, ncc=0.0, peak_shift=(window[0].start, window[1].start), n_shifts=window_size(window), p_fa=1.0, log10_p_fa=0.0)


def corrected_threshold(threshold: float, n_hypotheses: int) -> float:
    """The PCE whose false-alarm probability over ``n_hypotheses`` equals that of ``threshold`` at one.

    The maximum of N unrelated correlations is larger than one of them, so a search over N offsets (scales,
    orientations) needs a higher PCE for the same false-alarm probability: PCE 60 at one hypothesis
    (P_FA 4.7e-15) becomes 84.6 over the 263,169 offsets of a 512x512 crop in a 1024x1024 fingerprint.
    Returns ``threshold`` itself for one hypothesis.
    """
    n = max(int(n_hypotheses), 1)
    if n == 1 or threshold <= 0:
        return float(threshold)
    target = log10_false_alarm(threshold, 1)
    hi = threshold
    while log10_false_alarm(hi, n) > target:
        hi *= 2.0
    import scipy.optimize  # lazy: 0.1 s of imports that only a crop search's threshold needs

    return float(scipy.optimize.brentq(lambda t: log10_false_alarm(t, n) - target, threshold, hi, xtol=1e-6))

"""Suppression of non-unique artefacts in PRNU fingerprints: traces that every body of a camera model (or family)
shares, which raise the PCE between different bodies of one model.

The fingerprint estimate already has its CFA sub-lattice row and column means removed and a Wiener filter of its
Fourier magnitude (:func:`camforensics.core.residual.finish_residual`). These are further steps, each a function of
one fingerprint (or of a fingerprint and the mean of a library), measured by ``bench/bench_nonunique.py``:

- :func:`project_out`: remove the component along a common fingerprint (the mean of a library's or of a camera
  model's fingerprints): ``k - <k, m> / <m, m> * m``.
- :func:`spectral_equalize`: Lin & Li's spectrum equalization: Fourier magnitudes that stand out of their
  neighbourhood (periodic peaks of demosaicing, JPEG blocks, readout) are brought down to the local median, the
  phase is kept.
- :func:`lattice_notch`: the same equalization only at the frequencies of a period-``p`` lattice (``p = 8``: the
  JPEG block grid; ``p = 2``: the CFA period).
- :func:`axis_notch`: the Fourier bins within ``width`` of the zero-frequency axes zeroed: row and column patterns
  under a frame-wide envelope (a column pattern times vignetting), which the CFA zero-mean (row and column means
  only) leaves and every body of a camera model shares. ``FingerprintParams.axis_notch`` applies it in the DFT
  Wiener pass of the fingerprint at no cost; it is off by default (it also takes a body's own banding).
  :func:`camforensics.core.residual.notched_spectrum` (there: no scipy import at identify's start-up) applies it
  to a cached spectrum: the library search does so, by default, for the bodies
  of a camera model the library holds more than once (``SearchParams.sibling_notch``).
- :func:`spectral_equalize` ``only`` at :func:`shared_peaks`: the equalization restricted to the peaks that the
  fingerprint shares with other devices' fingerprints (:func:`peak_mask` of each), so that a body keeps the
  peaks no other device has.

References
----------
X. Lin, C.-T. Li, "Preprocessing reference sensor pattern noise via spectrum equalization", IEEE TIFS 11(1), 2016.
M. Chen, J. Fridrich, M. Goljan, J. Lukas, "Determining image origin and integrity using sensor noise", IEEE TIFS
3(1), 2008.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import ndimage

from camforensics.core.residual import notch_axes
from camforensics.errors import ParameterError


def _grey(k: np.ndarray) -> np.ndarray:
    a = np.asarray(k, dtype=np.float32)
    if a.ndim != 2:
        raise ParameterError(f"expected a 2-D fingerprint, got shape {a.shape}")
    return a


def project_out(k: np.ndarray, common: np.ndarray) -> np.ndarray:
    """``k`` without its component along ``common`` (same shape): ``k - <k, m> / <m, m> * m``. Not modified.

    Raises
    ------
    ParameterError
        Shapes differ.
    """
    a, m = _grey(k), _grey(common)
    if a.shape != m.shape:
        raise ParameterError(f"cannot project a {a.shape} fingerprint on a {m.shape} one")
    mm = float(np.vdot(m.astype(np.float64).ravel(), m.astype(np.float64).ravel()))
    if mm == 0.0:
        return a.copy()
    c = float(np.vdot(a.astype(np.float64).ravel(), m.astype(np.float64).ravel())) / mm
    return (a - np.float32(c) * m).astype(np.float32)


def _equalize(f: np.ndarray, mask: np.ndarray | None, *, window: int, ratio: float) -> np.ndarray:
    mag = np.abs(f)
    med = ndimage.median_filter(mag, size=window, mode="nearest")
    peaks = mag > ratio * med
    if mask is not None:
        peaks &= mask
    peaks[0, 0] = False  # the mean is not a peak to equalize
    gain = np.ones(mag.shape, np.float32)
    gain[peaks] = (med[peaks] / mag[peaks]).astype(np.float32)
    return f * gain


def spectral_equalize(
    k: np.ndarray, *, window: int = 7, ratio: float = 2.0, only: np.ndarray | None = None
) -> np.ndarray:
    """Lin & Li's spectrum equalization: every Fourier magnitude above ``ratio`` times the median of its
    ``window`` x ``window`` neighbourhood is set to that median; phases are kept. Not modified.

    ``only``: a half-plane (``rfft2``) mask of the bins that may be equalized, e.g. :func:`shared_peaks` (the
    peaks this fingerprint shares with others); the rest of the spectrum is kept.

    Raises
    ------
    ParameterError
        A window that is not an odd size >= 3, a ratio <= 1, or a mask of another shape.
    """
    _check_window(window, ratio)
    a = _grey(k)
    f = scipy.fft.rfft2(a, workers=-1)
    if only is not None and np.shape(only) != f.shape:
        raise ParameterError(f"the mask of bins has shape {np.shape(only)}, the half-plane spectrum {f.shape}")
    return scipy.fft.irfft2(_equalize(f, only, window=window, ratio=ratio), s=a.shape, workers=-1).astype(np.float32)


def _check_window(window: int, ratio: float) -> None:
    if window < 3 or window % 2 == 0 or not ratio > 1.0:
        raise ParameterError(f"window must be odd >= 3 and ratio > 1, not {window} and {ratio}")


def peak_mask(k: np.ndarray, *, window: int = 7, ratio: float = 3.0) -> np.ndarray:
    """Half-plane (``rfft2``) mask of the Fourier bins of ``k`` whose magnitude is above ``ratio`` times the median
    of its ``window`` x ``window`` neighbourhood (the peaks :func:`spectral_equalize` would bring down; DC left out).

    Raises
    ------
    ParameterError
        A window that is not an odd size >= 3, or a ratio <= 1.
    """
    _check_window(window, ratio)
    mag = np.abs(scipy.fft.rfft2(_grey(k), workers=-1))
    peaks = mag > ratio * ndimage.median_filter(mag, size=window, mode="nearest")
    peaks[0, 0] = False
    return peaks


def shared_peaks(masks: list[np.ndarray], *, min_count: int = 1) -> np.ndarray:
    """The bins that are peaks (:func:`peak_mask`) of at least ``min_count`` of ``masks`` (the fingerprints of
    other devices): a fingerprint equalized ``only`` there keeps its own peaks that no other device has.

    Raises
    ------
    ParameterError
        No mask, masks of different shapes, or ``min_count`` < 1.
    """
    if not masks or min_count < 1 or len({np.shape(m) for m in masks}) != 1:
        raise ParameterError("shared_peaks needs one or more masks of one shape and min_count >= 1")
    count = np.zeros(np.shape(masks[0]), np.int32)
    for m in masks:
        count += np.asarray(m, dtype=bool)
    return count >= min_count


def lattice_mask(shape: tuple[int, int], period: int, *, width: int = 1) -> np.ndarray:
    """Half-plane (``rfft2``) mask of the frequencies of a period-``period`` lattice (multiples of ``H/p`` and
    ``W/p``, +-``width`` bins), the DC bin left out."""
    h, w = shape
    mask = np.zeros((h, w // 2 + 1), bool)
    rows = {round(j * h / period) % h for j in range(period)}
    cols = {round(j * w / period) for j in range(period // 2 + 1)}
    for r in rows:
        for c in cols:
            if c > w // 2:
                continue
            ys = [(r + d) % h for d in range(-width, width + 1)]
            xs = [x for x in range(c - width, c + width + 1) if 0 <= x <= w // 2]
            mask[np.ix_(ys, xs)] = True
    mask[0, 0] = False
    return mask


def lattice_notch(k: np.ndarray, period: int, *, window: int = 7, ratio: float = 1.0) -> np.ndarray:
    """Equalize the Fourier magnitudes at the frequencies of a period-``period`` lattice (8: JPEG block grid; 2:
    CFA) to their local median (``ratio`` 1: every lattice bin above its neighbourhood). Not modified.

    Raises
    ------
    ParameterError
        A period < 2.
    """
    if period < 2:
        raise ParameterError(f"period must be >= 2, not {period}")
    a = _grey(k)
    f = scipy.fft.rfft2(a, workers=-1)
    mask = lattice_mask(a.shape, period)
    out = _equalize(f, mask, window=window, ratio=max(ratio, 1.0 + 1e-6))
    return scipy.fft.irfft2(out, s=a.shape, workers=-1).astype(np.float32)


def axis_notch(k: np.ndarray, width: int = 1) -> np.ndarray:
    """``k`` with the Fourier bins within ``width`` of the zero-frequency axes zeroed (``|v| <= width`` or
    ``|u| <= width``, in bins); what ``FingerprintParams.axis_notch`` does at estimation, for a fingerprint
    estimated without it. Not modified.

    Raises
    ------
    ParameterError
        A width < 0 or a fingerprint that is not 2-D.
    """
    if width < 0:
        raise ParameterError(f"width must be >= 0 Fourier bins, not {width}")
    return notch_axes(_grey(k), width)


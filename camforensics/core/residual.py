"""Noise residuals: the PRNU-bearing part of an image (Lukas et al. 2006; Chen et al. 2008; Li 2010)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from camforensics.errors import ParameterError
from camforensics.runtime import fft, threads
from camforensics.core.denoise import denoise_channel, noise_coefficients, reconstruct_noise, wiener_noise_gain
from camforensics.core.params import GREY_WEIGHTS, ResidualParams
from camforensics.core.pce import Spectrum

# Colour channels are denoised in parallel threads only for images up to this many pixels: above it, two channels
# in flight need more than the 300 MB one extraction may take, so large images are denoised one channel at a time,
# each channel's passes split over the cores by row strips (camforensics.runtime.threads).
PARALLEL_CHANNELS_MAX_PIXELS = 4_000_000


def set_channel_threads(enabled: bool) -> None:
    """Allow or forbid the engine's threads (channels and row strips) in this process.

    Process-pool workers forbid them: with one process per core, threads only oversubscribe the cores.
    """
    threads.set_threads(enabled)


def channel_threads_for(n_pixels: int) -> bool:
    """Whether an image of ``n_pixels`` pixels is denoised with parallel channel threads in this process."""
    return threads.width() > 1 and n_pixels <= PARALLEL_CHANNELS_MAX_PIXELS


def map_channels(fn: Callable[[np.ndarray], Any], image: np.ndarray, *, parallel: bool = True, lazy: bool = False):
    """Apply ``fn`` to each channel of an HxW or HxWxC image, in threads when ``parallel``.

    Returns a list, or with ``lazy`` an iterator that yields each result in channel order as it is ready (so a
    caller can fold results in and drop them, keeping at most the pool's width of results alive).
    """
    return _map_list(fn, channel_views(image), parallel=parallel, lazy=lazy)


def channel_views(image: np.ndarray) -> list[np.ndarray]:
    """The 2-D channels of an HxW or HxWxC array, as views (no copies)."""
    return [image] if image.ndim == 2 else [image[:, :, c] for c in range(image.shape[2])]


def _map_list(fn: Callable[[np.ndarray], Any], channels: list[np.ndarray], *, parallel: bool, lazy: bool = False):
    """``fn`` over 2-D channels, in the pool's threads when ``parallel`` and there are several (see map_channels)."""
    if parallel and len(channels) > 1:
        results = threads.pool().map(fn, channels)
    else:
        results = (fn(c) for c in channels)
    return results if lazy else list(results)


def split_channels(image: np.ndarray) -> list[np.ndarray]:
    """The channels of an HxWxC image as C-contiguous 2-D arrays (one pass; later passes then read contiguous
    memory instead of every C-th sample)."""
    a = np.asarray(image)
    if a.ndim != 3:
        raise ParameterError(f"expected an HxWxC image, got shape {a.shape}")
    if 1 < a.shape[2] <= 4 and a.dtype in (np.uint8, np.uint16, np.float32) and a.flags.c_contiguous:
        return list(cv2.split(a))
    return [np.ascontiguousarray(a[:, :, c]) for c in range(a.shape[2])]


def to_grey(image: np.ndarray) -> np.ndarray:
    """Combine an RGB image (or per-channel residual) to grey with the weights of Binghamton's ``rgb2gray1``.

    Parameters
    ----------
    image : ndarray, HxW or HxWx3 (HxWx1 accepted)
        Channels in RGB order. Not modified.

    Returns
    -------
    ndarray, float32, HxW
    """
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float32, copy=False)
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ParameterError(f"expected an HxW or HxWx3 array, got shape {a.shape}")
    if a.dtype == np.uint8 and a.shape[2] == 3 and a.strides[2] == 1 and a.strides[1] >= 3 and a.shape[0] * a.shape[1]:
        from camforensics.runtime import native

        grey = native.grey_u8(a, GREY_WEIGHTS)  # a photo: the same bits in one pass (12 MP: 0.09 -> 0.02 s of CPU)
        if grey is not None:
            return grey
    return grey_from_channels([a[:, :, c] for c in range(a.shape[2])])


def grey_from_channels(channels: list[np.ndarray]) -> np.ndarray:
    """Weighted grey sum of 1 or 3 separate 2-D channels (RGB order) without stacking them."""
    if len(channels) == 1:
        return np.asarray(channels[0], dtype=np.float32)
    if len(channels) != 3:
        raise ParameterError(f"expected 1 or 3 channels, got {len(channels)}")
    out = np.empty(np.shape(channels[0]), np.float32)

    def part(r0: int, r1: int) -> None:  # row strips in threads: each element's operations as on the whole array
        np.multiply(channels[0][r0:r1], np.float32(GREY_WEIGHTS[0]), dtype=np.float32, out=out[r0:r1])
        for ch, weight in zip(channels[1:], GREY_WEIGHTS[1:]):
            out[r0:r1] += np.multiply(ch[r0:r1], np.float32(weight), dtype=np.float32)

    threads.for_row_strips(part, out.shape[0], out.size)
    return out


def zero_mean_cfa(residual: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """Remove row and column means separately on each of the four 2x2 CFA sub-lattices.

    This removes linear patterns that all cameras of a model share (demosaicing, row/column readout), so they do
    not count as a device match (Chen et al. 2008, "ZeroMeanTotal").

    Row means are removed first, then column means; since the column means of the row-centred lattice are the
    original column means minus the lattice's mean, both come from one reading of the array and are removed in
    one pass: ``x - row_mean - col_mean + mean`` (row strips in threads).

    Parameters
    ----------
    residual : ndarray, 2-D
        Not modified unless ``overwrite``.
    overwrite : bool, keyword-only
        Edit a float32 ``residual`` in place (it is returned).

    Returns
    -------
    ndarray, float32
        An array whose every sub-lattice has zero row and column means.
    """
    a = np.asarray(residual)
    if a.ndim != 2:
        raise ParameterError(f"zero_mean_cfa expects a 2-D array, got shape {a.shape}")
    out = a if overwrite and a.dtype == np.float32 else np.array(a, dtype=np.float32, copy=True)
    h, w = out.shape
    if h % 2 or w % 2 or not out.flags.c_contiguous:
        for dy in (0, 1):
            for dx in (0, 1):
                sub = out[dy::2, dx::2]  # a view: edits land in ``out``
                if sub.size == 0:
                    continue
                sub -= sub.mean(axis=1, keepdims=True)
                sub -= sub.mean(axis=0, keepdims=True)
        return out
    lattices = out.reshape(h // 2, 2, w // 2, 2)  # [row pair, dy, column pair, dx], a view of ``out``
    # Sums in float64 by OpenCV's SIMD reductions: rows of a two-channel (dx) image; columns of row pairs (dy). The
    # two read the array at once, each on a core (OpenCV lets go of the GIL; each reduction is the same call).
    row_sum, col_sum = threads.both(
        lambda: cv2.reduce(out.reshape(h, w // 2, 2), 1, cv2.REDUCE_SUM, dtype=cv2.CV_64F),  # (h, 1, dx)
        lambda: cv2.reduce(out.reshape(h // 2, 2 * w), 0, cv2.REDUCE_SUM, dtype=cv2.CV_64F),  # (1, dy * w + x)
        size=out.size,
    )
    row_mean = row_sum.reshape(h // 2, 2, 2) / (w // 2)  # (h/2, dy, dx)
    col_mean = col_sum.reshape(2, w // 2, 2) / (h // 2)  # (dy, w/2, dx)
    lattice_mean = row_mean.mean(axis=0)  # (dy, dx)
    row_part = row_mean.astype(np.float32)[:, :, None, :]
    col_part = (col_mean - lattice_mean[:, None, :]).astype(np.float32)[None]
    from camforensics.runtime import native

    if native.cfa_centre(out, row_part, col_part):  # the same two subtractions per element, in one native pass
        return out

    def centre(r0: int, r1: int) -> None:
        block = lattices[r0:r1]
        block -= row_part[r0:r1]
        block -= col_part

    threads.for_row_strips(centre, h // 2, out.size)
    return out


def wiener_dft(
    residual: np.ndarray, sigma: float, *, windows: tuple[int, ...] = (3, 5, 7, 9), axis_notch: int = 0
) -> np.ndarray:
    """Adaptive Wiener filter of the Fourier magnitude; keeps the phase (Chen et al. 2008, "WienerInDFT").

    Peaks in the spectrum (periodic JPEG-block and CFA artefacts shared by a camera model) have a high local
    variance and are attenuated; the flat, noise-like part of the spectrum passes.

    The gain is the local adaptive Wiener rule on ``|FFT(W)| / sqrt(H*W)`` over the full spectrum plane with zeros
    beyond its edges, as in the reference code. It is computed on the half plane of a real FFT: the few columns
    past the half plane that the windows reach are the mirror image of the magnitude (``|F(-u, -v)| = |F(u, v)|``),
    so the result equals the full-plane computation at half the cost.

    Parameters
    ----------
    residual : ndarray, 2-D
        Not modified.
    sigma : float
        Noise standard deviation on the scale of ``|FFT(W)| / sqrt(H*W)``; usually ``std(W)``.
    windows : tuple of int, keyword-only
        Odd window sizes of the local variance estimate.
    axis_notch : int, keyword-only
        Also zero the bins within this many of the zero-frequency axes (:func:`zero_axis_bins`), in the same
        pass; 0 (the default) leaves them.

    Returns
    -------
    ndarray, float32
    """
    w = np.asarray(residual, dtype=np.float32)
    if w.ndim != 2:
        raise ParameterError(f"wiener_dft expects a 2-D array, got shape {w.shape}")
    if not sigma > 0:
        return w.copy()  # an all-zero residual has nothing to filter
    h, wd = w.shape
    spectrum = fft.rfft2(w, workers=-1)
    half = spectrum.shape[1]
    reach = max(windows) // 2
    magnitude = np.empty((h, half + reach), np.float32)
    np.abs(spectrum, out=magnitude[:, :half])
    # Columns half..half+reach-1 of the full plane: |F(u, v)| = |F(-u, W - v)|.
    extra = [wd - c for c in range(half, half + reach) if wd - c >= 0]
    if extra:
        flipped_rows = (-np.arange(h)) % h
        magnitude[:, half : half + len(extra)] = magnitude[np.ix_(flipped_rows, extra)]
    magnitude[:, half + len(extra) :] = 0  # beyond the full plane's right edge (tiny widths only)
    magnitude *= np.float32(1.0 / np.sqrt(h * wd))
    gain = wiener_noise_gain(magnitude, float(sigma) ** 2, windows=windows)
    del magnitude

    _scale_rows(spectrum, gain[:, :half])
    del gain
    zero_axis_bins(spectrum, axis_notch)
    return fft.irfft2(spectrum, s=(h, wd), workers=-1).astype(np.float32, copy=False)


def zero_axis_bins(spectrum: np.ndarray, width: int) -> None:
    """Zero, in place, the bins of a half-plane (``rfft2``) spectrum within ``width`` of the zero-frequency axes:
    every bin with ``|v| <= width`` (vertical frequency, in bins) or ``u <= width`` (horizontal). ``width`` 0 or
    less: nothing.

    The CFA zero-mean already removes the axes themselves (row and column means); the bins next to them hold row
    and column patterns under an envelope as wide as the frame (e.g. vignetting times a column pattern), which
    every body of a camera model can share (``core.nonunique.axis_notch``).
    """
    if width <= 0:
        return
    h = spectrum.shape[0]
    spectrum[: min(width + 1, h)] = 0
    spectrum[max(h - width, 0) :] = 0
    spectrum[:, : width + 1] = 0


def notched_spectrum(s: Spectrum, width: int) -> Spectrum:
    """A fingerprint's :class:`~camforensics.core.pce.Spectrum` with ``core.nonunique.axis_notch`` applied: the half-plane
    bins within ``width`` of the zero-frequency axes zeroed on a copy (no FFT; ``s`` may be a read-only
    memory-mapped cache) and the norm recomputed from the bins kept (Parseval). Equal, to float32 rounding, to the
    spectrum of ``axis_notch(k, width)``; ``width`` 0 returns ``s`` itself. What the library search correlates a
    query with for the bodies of a camera model that the library holds more than once
    (``SearchParams.sibling_notch``).

    Raises
    ------
    ParameterError
        A width < 0.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 0:
        raise ParameterError(f"width must be an int >= 0 Fourier bins, not {width!r}")
    if width == 0:
        return s
    f = np.array(s.f, dtype=np.complex64, copy=True)
    zero_axis_bins(f, width)
    h, w = s.shape
    power = (f.real.astype(np.float64) ** 2 + f.imag.astype(np.float64) ** 2).sum(axis=0)
    # columns 1 .. (w - 1) // 2 of the half plane stand for two columns of the full plane each
    energy = power[0] + 2.0 * power[1 : (w - 1) // 2 + 1].sum() + (power[w // 2] if w % 2 == 0 else 0.0)
    return Spectrum(f=f, norm=float(np.sqrt(energy / (h * w))), shape=s.shape, conjugated=s.conjugated)


def notch_axes(x: np.ndarray, width: int) -> np.ndarray:
    """``x`` (2-D, not modified) with :func:`zero_axis_bins` applied to its spectrum; float32."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ParameterError(f"expected a 2-D array, got shape {a.shape}")
    if width <= 0:
        return a.copy()
    f = fft.rfft2(a, workers=-1)
    zero_axis_bins(f, width)
    return fft.irfft2(f, s=a.shape, workers=-1).astype(np.float32, copy=False)


def _scale_rows(spectrum: np.ndarray, gain: np.ndarray) -> None:
    """``spectrum *= gain`` in place, on row strips in threads."""

    def scale(r0: int, r1: int) -> None:
        spectrum[r0:r1] *= gain[r0:r1]

    threads.for_row_strips(scale, spectrum.shape[0], spectrum.size)


# The local variance is floored at this share of the image's median, so that a saturated or perfectly flat area
# (variance near 0) is not weighted without bound.
VARIANCE_FLOOR = 0.05


def local_scale(noise: np.ndarray, window: int) -> np.ndarray:
    """``sqrt(local variance / median local variance)`` of one channel's noise over ``window`` x ``window`` pixels
    (the variance floored at ``VARIANCE_FLOOR`` times its median; 1 everywhere for an all-zero channel)."""
    n = np.ascontiguousarray(noise, dtype=np.float32)
    var = cv2.boxFilter(n * n, cv2.CV_32F, (window, window), normalize=True, borderType=cv2.BORDER_REFLECT)
    median = float(np.median(var))
    if not median > 0:
        return np.ones(n.shape, np.float32)
    return np.sqrt(np.maximum(var, np.float32(VARIANCE_FLOOR * median)) / np.float32(median)).astype(np.float32)


def enhance_spn(residual: np.ndarray, *, alpha: float = 7.0) -> np.ndarray:
    """Li's enhanced sensor pattern noise: ``sign(n) * exp(-0.5 * n**2 / alpha**2)`` (model 5).

    Strong components of the residual, which come mostly from scene details, are attenuated.

    Parameters
    ----------
    residual : ndarray
        Not modified.
    alpha : float, keyword-only
        Spread of the attenuation; 7 in the paper.

    Returns
    -------
    ndarray, float32

    References
    ----------
    C.-T. Li, "Source camera identification using enhanced sensor pattern noise", IEEE TIFS 5(2), 2010.
    """
    n = np.asarray(residual, dtype=np.float32)
    out = np.exp(np.float32(-0.5 / alpha**2) * n * n)
    return np.copysign(out, n, out=out)


def finish_residual(
    grey_residual: np.ndarray, *, params: ResidualParams = ResidualParams(), overwrite: bool = False, axis_notch: int = 0
) -> np.ndarray:
    """Apply the post-processing of ``params`` to a grey residual: enhancement, CFA zero-mean, DFT Wiener, and the
    ``axis_notch`` of a fingerprint (``FingerprintParams.axis_notch``; :func:`zero_axis_bins`, in the Wiener pass).

    With ``overwrite`` a float32 ``grey_residual`` may be edited in place (the caller's own scratch array).
    """
    w = grey_residual
    if params.enhance_alpha is not None:
        w = enhance_spn(w, alpha=params.enhance_alpha)
        overwrite = True  # a new array of ours
    if params.zero_mean:
        w = zero_mean_cfa(w, overwrite=overwrite)
    if params.wiener_dft:
        w = wiener_dft(w, std_of(w), windows=params.windows, axis_notch=axis_notch)
    elif axis_notch > 0:
        w = notch_axes(w, axis_notch)
    return np.asarray(w, dtype=np.float32)


def std_of(x: np.ndarray) -> float:
    """Population standard deviation (``np.std``) of a float32 array in one SIMD pass with float64 sums."""
    a = np.asarray(x, dtype=np.float32)
    if a.size == 0:
        return 0.0
    if a.ndim == 2 and a.flags.c_contiguous and a.shape[1] < 2**31:
        _, std = cv2.meanStdDev(a)
        return float(std[0, 0])
    return float(np.std(a, dtype=np.float64))


def extract_channel_noise(image: np.ndarray, *, params: ResidualParams = ResidualParams()) -> list[np.ndarray]:
    """Per-channel wavelet noise of an image (step 1 of the residual), channels denoised in parallel threads."""
    a = np.asarray(image)
    if a.ndim not in (2, 3):
        raise ParameterError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    return noise_of_channels(channel_views(a), params=params)


def noise_of_channels(
    channels: list[np.ndarray], *, params: ResidualParams = ResidualParams(), contiguous: bool = True
) -> list[np.ndarray]:
    """:func:`extract_channel_noise` of channels already split into 2-D arrays of one shape (``contiguous``
    False: each may be a view of its padded reconstruction, see :func:`~camforensics.core.denoise.denoise_channel`)."""
    if not channels:
        return []
    h, w = np.shape(channels[0])[:2]
    return _map_list(
        lambda ch: denoise_channel(ch, params=params, contiguous=contiguous), channels, parallel=channel_threads_for(h * w)
    )


def _scale_add(d: np.ndarray, weight: np.float32, acc: np.ndarray | None) -> None:
    """``acc += weight * d`` (or ``d *= weight`` when ``acc`` is None), in place, one pass on row strips."""

    def part(r0: int, r1: int) -> None:
        if acc is None:
            np.multiply(d[r0:r1], weight, out=d[r0:r1])
        else:
            cv2.scaleAdd(d[r0:r1], float(weight), acc[r0:r1], dst=acc[r0:r1])

    threads.for_row_strips(part, d.shape[0], d.size)


def extract_grey_noise(image: np.ndarray, *, params: ResidualParams = ResidualParams()) -> np.ndarray:
    """Grey combination of the per-channel wavelet noises, with one inverse DWT instead of one per channel.

    The inverse DWT is linear, so the grey weights can be applied to the channels' noise coefficients before
    it; the result equals ``grey_from_channels(extract_channel_noise(image))`` up to float rounding.
    """
    a = np.asarray(image)
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        return denoise_channel(a if a.ndim == 2 else a[:, :, 0], params=params)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ParameterError(f"expected an HxW, HxWx1 or HxWx3 image, got shape {a.shape}")
    weights = [np.float32(x) for x in GREY_WEIGHTS]
    combined: list | None = None
    parallel = channel_threads_for(a.shape[0] * a.shape[1])
    jobs = map_channels(lambda ch: noise_coefficients(ch, params=params), a, parallel=parallel, lazy=True)
    for c, coeffs in enumerate(jobs):
        if combined is None:
            for level in coeffs[1:]:  # the denoiser's own arrays: scaled in place to become the accumulator
                for d in level:
                    _scale_add(d, weights[c], None)
            combined = coeffs
            continue
        for level, details in zip(combined[1:], coeffs[1:]):
            for acc, d in zip(level, details):
                _scale_add(d, weights[c], acc)
    return reconstruct_noise(combined, a.shape[:2], params=params)


def extract_residual(image: np.ndarray, *, params: ResidualParams = ResidualParams()) -> np.ndarray:
    """Noise residual W of an image: wavelet noise per channel, grey, (enhance), CFA zero-mean, DFT Wiener.

    Parameters
    ----------
    image : ndarray, HxW or HxWx3
        Pixel values on a 0..255 scale, RGB order, in sensor (stored) pixel order. Not modified.
    params : ResidualParams, keyword-only
        sigma0 and the other options; written into reports.

    Returns
    -------
    ndarray, float32, HxW

    References
    ----------
    Lukas, Fridrich, Goljan, IEEE TIFS 1(2), 2006; Chen, Fridrich, Goljan, Lukas, "Determining image origin and
    integrity using sensor noise", IEEE TIFS 3(1), 2008.
    """
    return finish_residual(extract_grey_noise(image, params=params), params=params, overwrite=True)

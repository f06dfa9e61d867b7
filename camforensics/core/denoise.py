"""Wavelet-domain adaptive Wiener denoiser of Lukas, Fridrich and Goljan (2006), Appendix A."""

from __future__ import annotations

import cv2
import numpy as np
import pywt

from camforensics.core import dwt
from camforensics.runtime import native
from camforensics.core.params import ResidualParams
from camforensics.runtime.threads import map_row_strips
from camforensics.errors import ParameterError


def min_image_side(params: ResidualParams) -> int:
    """Smallest image side that the wavelet decomposition of ``params`` handles without boundary overlap."""
    filter_len = pywt.Wavelet(params.wavelet).dec_len
    return (filter_len - 1) * 2**params.levels


def _local_energy(c: np.ndarray, windows: tuple[int, ...]) -> np.ndarray:
    """``min_w mean_w(c**2)`` over the full square windows, zeros beyond the border (float32, new array)."""
    sq = cv2.multiply(c, c)  # squared once, then one box mean per window (cheaper than sqrBoxFilter per window)
    local = None
    for w in windows:
        m = cv2.boxFilter(sq, cv2.CV_32F, (w, w), normalize=True, borderType=cv2.BORDER_CONSTANT)
        local = m if local is None else cv2.min(local, m, dst=local)
    return local


def wiener_noise_gain(coeffs: np.ndarray, noise_var: float, *, windows: tuple[int, ...] = (3, 5, 7, 9)) -> np.ndarray:
    """Gain ``noise_var / (var + noise_var)`` that keeps the noise part of coefficients (local adaptive Wiener).

    For each window size w the local signal variance is ``max(0, mean_w(c**2) - noise_var)``; the minimum over
    the windows is kept as ``var``. The Wiener estimate of the signal is ``c * var / (var + noise_var)``, so the
    part returned here, the noise, is ``c * noise_var / (var + noise_var)`` (Binghamton ``WaveNoise``). Means
    are taken over the full square window with zeros beyond the border, as
    ``scipy.ndimage.uniform_filter(mode="constant")`` does. Since ``max(0, m - s2) + s2 == max(m, s2)`` the gain
    is computed as ``s2 / max(min_w mean_w, s2)``, on row strips in threads.

    Parameters
    ----------
    coeffs : ndarray, 2-D
        Wavelet subband or spectrum magnitude. Not modified.
    noise_var : float
        Variance sigma0**2 of the noise.
    windows : tuple of int, keyword-only
        Odd window sizes.

    Returns
    -------
    ndarray, float32
        A new array in (0, 1]: multiply ``coeffs`` by it to get their noise part.

    References
    ----------
    Lukas, Fridrich, Goljan, "Digital camera identification from sensor pattern noise", IEEE TIFS 1(2), 2006,
    Appendix A.
    """
    if native.available():
        return native.wiener(coeffs, noise_var, windows, noise=False)
    c = np.asarray(coeffs, dtype=np.float32)
    s2 = np.float32(noise_var)

    def gain(local: np.ndarray, values: np.ndarray, dst: np.ndarray) -> None:
        np.divide(s2, local, out=dst)

    return map_row_strips(_in_chunks(gain, windows, s2), c, halo=max(windows) // 2)


def wiener_noise(coeffs: np.ndarray, noise_var: float, *, windows: tuple[int, ...] = (3, 5, 7, 9)) -> np.ndarray:
    """The noise part ``coeffs * wiener_noise_gain(coeffs, ...)`` as a new float32 array, the product fused
    into the gain's last pass (row strips in threads)."""
    if native.available():
        return native.wiener(coeffs, noise_var, windows, noise=True)
    c = np.asarray(coeffs, dtype=np.float32)
    s2 = np.float32(noise_var)

    def noise(local: np.ndarray, values: np.ndarray, dst: np.ndarray) -> None:
        cv2.divide(values, local, dst=dst, scale=float(s2))

    return map_row_strips(_in_chunks(noise, windows, s2), c, halo=max(windows) // 2)


# Rows of coefficients whose local energies are computed at once: the squares, box means and their minimum for
# this many rows stay in the core's cache, and the temporaries stay small whatever the image size.
CHUNK_ROWS = 128


def _in_chunks(finish, windows: tuple[int, ...], s2: np.float32):
    """A strip function for :func:`map_row_strips` that computes ``max(min_w mean_w(c**2), s2)`` in chunks of
    :data:`CHUNK_ROWS` rows (each with the window's rows of context from the strip, zeros beyond the array) and
    hands each chunk to ``finish(local, values, dst)``."""
    halo = max(windows) // 2

    def strip(block: np.ndarray, inner: slice, dst: np.ndarray) -> None:
        start, stop = inner.start, inner.stop
        for r0 in range(start, stop, CHUNK_ROWS):
            r1 = min(r0 + CHUNK_ROWS, stop)
            a, b = max(0, r0 - halo), min(block.shape[0], r1 + halo)
            local = _local_energy(block[a:b], windows)[r0 - a : r1 - a]
            np.maximum(local, s2, out=local)
            finish(local, block[r0:r1], dst[r0 - start : r1 - start])

    return strip


def mirror_padded(channel: np.ndarray, block: int) -> np.ndarray:
    """float32 copy of a 2-D channel, mirror-padded (``np.pad(mode="symmetric")``) at the bottom and right to
    multiples of ``block``; converted and padded in one buffer (no second full-size copy)."""
    h, w = channel.shape
    ph, pw = (-h) % block, (-w) % block
    out = np.empty((h + ph, w + pw), np.float32)
    out[:h, :w] = channel
    if ph:
        out[h:, :w] = out[h - 1 : h - 1 - ph : -1, :w] if h - 1 - ph >= 0 else out[h - 1 :: -1, :w][:ph]
    if pw:
        out[:, w:] = out[:, w - 1 : w - 1 - pw : -1] if w - 1 - pw >= 0 else out[:, w - 1 :: -1][:, :pw]
    return out


def noise_coefficients(channel: np.ndarray, *, params: ResidualParams = ResidualParams()) -> list:
    """Wavelet coefficients of a channel's noise: approximation zeroed, each detail times its Wiener noise gain.

    The channel is mirror-padded to a multiple of ``2**levels`` and decomposed with a periodic ``levels``-level
    DWT (:mod:`camforensics.core.dwt`, equal to pywt's ``periodization`` mode); the inverse DWT of the result
    (see :func:`reconstruct_noise`) is the channel's noise.

    Parameters
    ----------
    channel : ndarray, 2-D
        Pixel values on a 0..255 scale (any real dtype). Not modified.
    params : ResidualParams, keyword-only
        sigma0, levels, wavelet and windows.

    Returns
    -------
    list
        ``[cA, (cH, cV, cD) per level, coarsest first]`` as ``pywt.wavedec2`` returns, float32.

    Raises
    ------
    ParameterError
        If the channel is smaller than :func:`min_image_side`.
    """
    src = np.asarray(channel)
    if src.ndim != 2:
        raise ParameterError(f"expected a 2-D channel, got shape {src.shape}")
    h, w = src.shape
    min_side = min_image_side(params)
    if min(h, w) < min_side:
        raise ParameterError(
            f"image of {w}x{h} pixels is too small for a {params.levels}-level {params.wavelet} decomposition "
            f"(needs >= {min_side} pixels per side); use fewer levels"
        )
    noise_var = params.sigma0**2

    def noise(details: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        out = list(details)
        for j in range(len(out)):  # each subband replaced by its noise part as soon as that is computed
            out[j] = wiener_noise(out[j], noise_var, windows=params.windows)
        return tuple(out)

    x = mirror_padded(src, 2**params.levels)
    approx, finest = dwt.dwt2(x, params.wavelet)
    del x  # the padded channel is not needed beyond the first level
    finest = noise(finest)
    coeffs = dwt.wavedec2(approx, params.wavelet, params.levels - 1)
    del approx
    for i in range(1, len(coeffs)):
        coeffs[i] = noise(coeffs[i])
    coeffs[0][...] = 0
    coeffs.append(finest)
    return coeffs


def reconstruct_noise(
    coeffs: list, shape: tuple[int, int], *, params: ResidualParams = ResidualParams(), contiguous: bool = True
) -> np.ndarray:
    """Inverse DWT of noise coefficients (their approximation band is zero and not read), cropped to the
    channel's ``shape`` (float32; C-contiguous, or with ``contiguous`` False possibly a view of the padded
    reconstruction, which saves a copy for callers that read it row by row)."""
    noise = dwt.waverec2(coeffs, params.wavelet, zero_approximation=True)[: shape[0], : shape[1]]
    return np.ascontiguousarray(noise, dtype=np.float32) if contiguous else noise


def denoise_channel(
    channel: np.ndarray, *, params: ResidualParams = ResidualParams(), contiguous: bool = True
) -> np.ndarray:
    """Return the noise ``channel - denoised(channel)`` of one 2-D channel (Lukas et al. 2006, Appendix A).

    The channel is mirror-padded to a multiple of ``2**levels``, decomposed with a periodic ``levels``-level
    DWT, every detail subband is Wiener-filtered with sigma0**2, the approximation band is set to
    zero, and the inverse DWT of the noise part of every detail (:func:`wiener_noise_gain`) is the residual.

    Parameters
    ----------
    channel : ndarray, 2-D
        Pixel values on a 0..255 scale (any real dtype). Not modified.
    params : ResidualParams, keyword-only
        sigma0, levels, wavelet and windows.

    contiguous : bool, keyword-only
        False: the result may be a view of a slightly larger (padded) array, see :func:`reconstruct_noise`.

    Returns
    -------
    ndarray, float32, same shape as ``channel``
        The noise residual of the channel.
    """
    x = np.asarray(channel)
    if x.ndim != 2:
        raise ParameterError(f"denoise_channel expects a 2-D channel, got shape {x.shape}")
    return reconstruct_noise(noise_coefficients(x, params=params), x.shape, params=params, contiguous=contiguous)

"""The residual computed the way the public reference code does it: the baseline of benchmarks and tests.

Per channel ``pywt.wavedec2`` / ``waverec2``, ``scipy.ndimage.uniform_filter`` over the four windows in float64,
``numpy.fft`` for the DFT Wiener filter, as in prnu-python (polimi-ispl) and the Binghamton MATLAB code. It uses
the boundary convention of :mod:`camforensics.core.denoise` (mirror padding to a multiple of ``2**levels``,
periodic DWT), so its result is the same residual computed slowly. Not for production use.
"""

from __future__ import annotations

import numpy as np
import pywt
import scipy.ndimage

from camforensics.core.params import GREY_WEIGHTS, ResidualParams


def _wiener_noise(x: np.ndarray, noise_var: float, windows: tuple[int, ...]) -> np.ndarray:
    energy = np.abs(x) ** 2
    avg = np.zeros(x.shape + (len(windows),))
    for i, w in enumerate(windows):
        avg[:, :, i] = scipy.ndimage.uniform_filter(energy, w, mode="constant")
    var = np.maximum(avg - noise_var, 0).min(axis=2)
    return x * noise_var / (var + noise_var)


def reference_channel_noise(channel: np.ndarray, *, params: ResidualParams = ResidualParams()) -> np.ndarray:
    """Wavelet noise of one channel, slowly (float64, pywt, ``scipy.ndimage.uniform_filter``)."""
    x = np.asarray(channel, dtype=np.float64)
    h, w = x.shape
    block = 2**params.levels
    x = np.pad(x, ((0, (-h) % block), (0, (-w) % block)), mode="symmetric")
    coeffs = pywt.wavedec2(x, params.wavelet, mode="periodization", level=params.levels)
    coeffs[0][...] = 0
    for i in range(1, len(coeffs)):
        coeffs[i] = tuple(_wiener_noise(d, params.sigma0**2, params.windows) for d in coeffs[i])
    return pywt.waverec2(coeffs, params.wavelet, mode="periodization")[:h, :w]


def reference_residual(image: np.ndarray, *, params: ResidualParams = ResidualParams()) -> np.ndarray:
    """Noise residual W, slowly (float64 filters, one full-plane complex FFT); see the module docstring."""
    im = np.asarray(image, dtype=np.float64)
    if im.ndim == 2:
        im = im[:, :, None]
    h, w, channels = im.shape
    block = 2**params.levels
    noise = np.zeros((h, w, channels))
    for c in range(channels):
        noise[:, :, c] = reference_channel_noise(im[:, :, c], params=params)
    grey = noise[:, :, 0] if channels == 1 else sum(noise[:, :, c] * GREY_WEIGHTS[c] for c in range(3))
    for dy in (0, 1):
        for dx in (0, 1):
            sub = grey[dy::2, dx::2]
            sub -= sub.mean(axis=1, keepdims=True)
            sub -= sub.mean(axis=0, keepdims=True)
    f = np.fft.fft2(grey)
    mag = np.abs(f / np.sqrt(h * w))
    mag_noise = _wiener_noise(mag, grey.std(ddof=1) ** 2, params.windows)
    mag[mag == 0] = 1
    return np.real(np.fft.ifft2(f * mag_noise / mag)).astype(np.float32)

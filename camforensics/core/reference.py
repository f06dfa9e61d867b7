"""The residual computed the way the public reference code does it: the baseline of benchmarks and tests.

Per channel ``pywt.wavedec2`` / ``waverec2``, ``scipy.ndimage.uniform_filter`` over the four windows in float64,
``numpy.fft`` for the DFT Wiener filter, as in prnu-python (polimi-ispl) and the Binghamton MATLAB code. It uses
the boundary convention of :mod:`camforensics.core.denoise` (mirror padding to a multiple of ``2**levels``,
periodic DWT), so its result is the same residual computed slowly. Not for production use.

:func:`reference_crosscorr_2d` and :func:`reference_pce` are prnu-python's detector (``crosscorr_2d`` and ``pce`` of
its ``prnu/functions.py``), ported so that the benchmarks run the reference's residual *and* detector in the same
table as the engine's. Ported from prnu-python, Copyright (c) 2018 Nicolò Bonettini, Paolo Bestagini, Luca Bondi
(Politecnico di Milano, ISPL), MIT License (https://github.com/polimi-ispl/prnu-python). The port keeps its
arithmetic: each array's global mean removed, zero padding of the smaller one at the bottom and right, the second
array turned 180 degrees and multiplied in the complex float64 DFT (so the zero shift of two aligned arrays lies
at ``(H - 1, W - 1)``); the PCE is the global maximum's square over the mean square of the plane with the slice
``[y - r : y + r, x - r : x + r]`` (``2r`` x ``2r`` samples, nothing where the slice starts below 0) set to zero,
with the peak's sign. The differences: the port does not subtract the means from the caller's arrays in place, and
it sums the energy in float64.
"""

from __future__ import annotations

import numpy as np
import pywt
import scipy.ndimage

from camforensics.core.params import GREY_WEIGHTS, ResidualParams
from camforensics.errors import ParameterError


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


def reference_crosscorr_2d(k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """prnu-python's ``crosscorr_2d``: the circular correlation plane of two 2-D arrays, the smaller zero-padded
    (bottom, right) to the larger; float32, shape ``(max(h1, h2), max(w1, w2))``. Inputs are not modified."""
    if np.ndim(k1) != 2 or np.ndim(k2) != 2:
        raise ParameterError(f"crosscorr_2d takes 2-D arrays, got {np.shape(k1)} and {np.shape(k2)}")
    h, w = max(k1.shape[0], k2.shape[0]), max(k1.shape[1], k2.shape[1])
    a = np.asarray(k1, dtype=np.float32)  # prnu-python works on float32 arrays and float64 DFTs
    b = np.asarray(k2, dtype=np.float32)
    a = np.pad(a - a.mean(), [(0, h - a.shape[0]), (0, w - a.shape[1])])
    b = np.pad(b - b.mean(), [(0, h - b.shape[0]), (0, w - b.shape[1])])
    return np.real(np.fft.ifft2(np.fft.fft2(a) * np.fft.fft2(np.rot90(b, 2)))).astype(np.float32)


def reference_pce(cc: np.ndarray, neigh_radius: int = 2) -> dict:
    """prnu-python's ``pce`` of a correlation plane: ``{"peak": (y, x), "pce": float, "cc": peak value}`` (the peak is
    the global maximum; see the module docstring for the neighbourhood left out of the energy)."""
    if np.ndim(cc) != 2 or not isinstance(neigh_radius, int):
        raise ParameterError("pce takes a 2-D correlation plane and an int radius")
    y, x = np.unravel_index(int(np.argmax(cc)), cc.shape)
    peak = float(cc[y, x])
    floor = np.array(cc, copy=True)
    floor[y - neigh_radius : y + neigh_radius, x - neigh_radius : x + neigh_radius] = 0
    energy = float(np.mean(floor.astype(np.float64) ** 2))
    return {"peak": (int(y), int(x)), "pce": peak**2 / energy * float(np.sign(peak)), "cc": peak}

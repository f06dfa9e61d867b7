"""The hand-written PSNR and SSIM of camforensics before scikit-image: the reference its replacement is tested against."""

from __future__ import annotations

import math

import cv2
import numpy as np

from camforensics.errors import ParameterError, SizeMismatchError

PEAK = 255.0  # largest value of an 8-bit sample: the "peak" of PSNR and the dynamic range L of SSIM
SSIM_WINDOW = 11  # side of SSIM's Gaussian window (Wang et al. 2004)
SSIM_SIGMA = 1.5  # its standard deviation, pixels (Wang et al. 2004)
SSIM_K1, SSIM_K2 = 0.01, 0.03  # stabilising constants C1 = (K1 L)^2, C2 = (K2 L)^2 (Wang et al. 2004)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 arrays of one shape (HxW or HxWxC)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise SizeMismatchError(f"cannot compare images of shapes {x.shape} and {y.shape}")
    if x.ndim not in (2, 3) or x.size == 0:
        raise ParameterError(f"expected non-empty HxW or HxWxC images, got shape {x.shape}")
    return x, y


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of ``b`` against ``a`` in dB, peak 255, over all pixels and channels.

    ``PSNR = 10 log10(255^2 / MSE)``; ``inf`` for identical images. A constant offset ``d`` gives
    ``20 log10(255 / |d|)``.

    Parameters
    ----------
    a, b : ndarray, HxW or HxWxC, same shape
        Samples on a 0..255 scale (uint8 or float). Not modified.

    Returns
    -------
    float

    Raises
    ------
    SizeMismatchError
        If the shapes differ.
    """
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(PEAK**2 / mse)


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT_101)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    index = num / den
    half = SSIM_WINDOW // 2
    if min(x.shape) > 2 * half:
        index = index[half:-half, half:-half]  # only windows that lie inside the image ("valid", as Wang's code)
    return float(index.mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of ``b`` against ``a`` (Wang, Bovik, Sheikh, Simoncelli 2004).

    The SSIM index map uses an 11x11 Gaussian window of standard deviation 1.5, ``C1 = (0.01 * 255)^2``,
    ``C2 = (0.03 * 255)^2`` and population (co)variances, as the authors' reference code; its mean is taken over
    the positions whose window lies inside the image (the whole map, with mirrored borders, for images of 10
    pixels or less per side). **Colour images: SSIM is computed on each channel separately and the mean over the
    channels is returned** (not on luma). 1.0 for identical images.

    Parameters
    ----------
    a, b : ndarray, HxW or HxWxC, same shape
        Samples on a 0..255 scale (uint8 or float). Not modified.

    Returns
    -------
    float
        In [-1, 1].

    Raises
    ------
    SizeMismatchError
        If the shapes differ.

    References
    ----------
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE Trans. Image Processing 13(4), 2004.
    """
    x, y = _pair(a, b)
    if x.ndim == 2:
        return _ssim_channel(x, y)
    return float(np.mean([_ssim_channel(np.ascontiguousarray(x[:, :, c]), np.ascontiguousarray(y[:, :, c]))
                          for c in range(x.shape[2])]))

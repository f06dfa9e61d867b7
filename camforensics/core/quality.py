"""Picture-quality metrics of an altered image against its original: PSNR and SSIM (8-bit scale)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from camforensics.errors import ParameterError, SizeMismatchError

PEAK = 255.0  # largest value of an 8-bit sample: the "peak" of PSNR and the dynamic range L of SSIM
SSIM_WINDOW = 11  # side of SSIM's Gaussian window (Wang et al. 2004)
SSIM_SIGMA = 1.5  # its standard deviation, pixels (Wang et al. 2004)
SSIM_K1, SSIM_K2 = 0.01, 0.03  # stabilising constants C1 = (K1 L)^2, C2 = (K2 L)^2 (Wang et al. 2004)


def _pair(a: np.ndarray, b: np.ndarray, dtype: type | None = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Both images as arrays of one shape (HxW or HxWxC): float64, or as they are with ``dtype=None``."""
    x = np.asarray(a, dtype=dtype)
    y = np.asarray(b, dtype=dtype)
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
    u, v = _pair(a, b, dtype=None)
    if u.dtype == np.uint8 and v.dtype == np.uint8:
        # 8-bit pairs: the squared differences summed exactly in integers (as scikit-image's float64 sum of them
        # is, below 2**53), then scikit-image's formula: the same value without two float64 copies of each image.
        sq = np.empty(u.shape, np.int32)
        np.subtract(u, v, out=sq, dtype=np.int32)
        np.square(sq, out=sq)  # at most 255**2: fits int32
        sse = int(sq.sum(dtype=np.int64))
        if sse == 0:
            return math.inf
        return float(10 * np.log10((PEAK**2) / np.float64(sse / sq.size)))
    x, y = _pair(a, b)
    if np.array_equal(x, y):
        return math.inf  # (scikit-image would divide by zero)
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(x, y, data_range=PEAK))


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
    channels is returned** (not on luma). 1.0 for identical images. The value of
    ``skimage.metrics.structural_similarity`` (Gaussian weights, population covariances), computed on row strips
    in threads (:func:`_ssim_valid_mean`; equal within float64 rounding, tested against scikit-image).

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
    x, y = _pair(a, b, dtype=None)  # the strips are made float64 one at a time
    if np.iscomplexobj(x) or np.iscomplexobj(y):
        raise ParameterError("expected real pixel values on a 0..255 scale, got complex ones")
    if min(x.shape[:2]) >= SSIM_WINDOW:
        channels = [(x, y)] if x.ndim == 2 else [(x[:, :, c], y[:, :, c]) for c in range(x.shape[2])]
        return float(np.mean([_ssim_valid_mean(u, v) for u, v in channels]))
    # Images under 11 pixels a side, which scikit-image refuses: the whole map with mirrored borders.
    x, y = _pair(x, y)
    if x.ndim == 2:
        return _ssim_channel(x, y)
    return float(np.mean([_ssim_channel(np.ascontiguousarray(x[:, :, c]), np.ascontiguousarray(y[:, :, c]))
                          for c in range(x.shape[2])]))


# Output rows of the SSIM map per strip: the strip's 5 float64 maps (+ inputs) stay within a few MB.
SSIM_STRIP_ROWS = 64


def _gaussian_taps() -> np.ndarray:
    """scikit-image's SSIM window: ``scipy.ndimage``'s Gaussian kernel of sigma 1.5, truncated at 3.5 sigma
    (radius 5, 11 taps), normalised to sum 1 (``scipy.ndimage._filters._gaussian_kernel1d``)."""
    radius = int(3.5 * SSIM_SIGMA + 0.5)
    t = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (SSIM_SIGMA * SSIM_SIGMA) * t**2)
    return phi / phi.sum()


def _ssim_valid_mean(x: np.ndarray, y: np.ndarray) -> float:
    """``skimage.metrics.structural_similarity(x, y, data_range=255, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` of one channel (HxW, both sides >= 11), computed the same way in float64 on
    row strips, in threads.

    scikit-image filters whole float64 images with ``scipy.ndimage`` (one core: ~7 s CPU for a 12 MP RGB pair)
    and then averages the map over the positions whose window lies inside the image; those positions never see
    the border rule, so each strip of output rows needs only its rows plus the window's radius above and below.
    The same window (:func:`_gaussian_taps`), the same formula step by step (population covariances, ``C1``,
    ``C2``), in float64: equal to scikit-image's result within float64 rounding
    (``tests/test_reference_metrics.py``).
    """
    import cv2

    from camforensics.runtime import threads

    taps = _gaussian_taps()
    pad = len(taps) // 2
    h, w = x.shape
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2

    def strip(r0: int, r1: int) -> float:
        xs = np.ascontiguousarray(x[r0 - pad : r1 + pad], dtype=np.float64)
        ys = np.ascontiguousarray(y[r0 - pad : r1 + pad], dtype=np.float64)

        def blur(z: np.ndarray) -> np.ndarray:
            out = cv2.sepFilter2D(z, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT)
            return out[pad : pad + r1 - r0, pad : w - pad]

        ux, uy = blur(xs), blur(ys)
        uxx, uyy, uxy = blur(xs * xs), blur(ys * ys), blur(xs * ys)
        # scikit-image's steps, each element computed by the same operations in the same order, in place:
        # vx = uxx - ux*ux, vy = uyy - uy*uy, vxy = uxy - ux*uy; A1 = 2 ux uy + C1, A2 = 2 vxy + C2,
        # B1 = ux**2 + uy**2 + C1, B2 = vx + vy + C2; S = (A1 A2) / (B1 B2)
        ux2, uy2, a1 = ux * ux, uy * uy, ux * uy
        uxx -= ux2
        uyy -= uy2
        uxy -= a1
        a1 *= 2
        a1 += c1
        uxy *= 2
        uxy += c2  # A2
        ux2 += uy2
        ux2 += c1  # B1
        uxx += uyy
        uxx += c2  # B2
        a1 *= uxy
        ux2 *= uxx
        a1 /= ux2
        return float(np.sum(a1, dtype=np.float64))

    rows = list(range(pad, h - pad, SSIM_STRIP_ROWS))
    bounds = [(r, min(r + SSIM_STRIP_ROWS, h - pad)) for r in rows]
    if threads.width() > 1 and len(bounds) > 1:
        with threads.opencv_single_threaded():
            sums = list(threads.pool().map(lambda b: strip(*b), bounds))
    else:
        sums = [strip(*b) for b in bounds]
    return float(math.fsum(sums) / ((h - 2 * pad) * (w - 2 * pad)))

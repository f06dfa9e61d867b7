"""Camera-model profiles: the traces a camera model leaves in its photos, estimated from sample photos, and the
operations of the trace transplant that imposes them on another image.

A profile holds, for one camera model:

- the CFA layout and the demosaicing, estimated as linear filters per CFA phase by least squares (Kirchner 2010;
  Swaminathan, Wu & Liu 2007): for each of the four 2x2 layouts the photo is re-sampled on that layout (the
  *mosaic*: at each pixel, the channel the layout samples there), and every output sample of channel c at CFA
  phase p is regressed on the ``FILTER`` x ``FILTER`` mosaic neighbourhood. The normal equations are summed over
  the photos; the layout with the smallest total residual energy is the camera's, its 12 filters (3 channels x 4
  phases) its demosaicing (together with whatever linear processing follows it in the camera);
- the residual statistics of the grey high-pass residual ``h = x - G_1(x)`` (Gaussian, sigma 1 pixel): its mean
  power spectrum over ``BLOCK`` x ``BLOCK`` blocks (Welch), normalised to unit mean, with its periodic peaks
  (bins at least ``PEAK_RATIO`` times the local median), and the per-channel residual level;
- the model-level mean noise pattern: the mean of each channel's residual folded onto the 8 x 8 grid anchored at
  pixel (0, 0) (the JPEG block and CFA periods), shared by every body of the model (device-level PRNU averages
  out over photos of different scenes, the periodic pattern does not).

JPEG tables and subsampling come from :mod:`camforensics.io.jpeg_tables`; the file format and the build are in
:mod:`camforensics.pipelines.profile`.

References
----------
M. Kirchner, "Efficient estimation of CFA pattern configuration in digital camera images", SPIE 7541, 2010.
A. Swaminathan, M. Wu, K. J. R. Liu, "Nonintrusive component forensics of visual sensors using output images",
IEEE TIFS 2(1), 2007.
D. Cozzolino, J. Thies, A. Roessler, M. Niessner, L. Verdoliva, "SpoC: Spoofing camera fingerprints", CVPR-W 2021.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LAYOUTS: tuple[str, ...] = ("RGGB", "GRBG", "GBRG", "BGGR")
FILTER = 5  # side of the demosaicing filters (mosaic neighbourhood)
BLOCK = 64  # Welch block of the residual spectrum
PERIOD = 8  # fold period of the mean noise pattern (JPEG block; a multiple of the CFA period)
PEAK_RATIO = 4.0  # a periodic peak: spectrum bin >= this times the median of its 5x5 neighbourhood
MAX_FIT_SIDE = 1024  # the demosaicing fit reads at most this centred window of each photo (speed)
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def layout_channels(layout: str) -> np.ndarray:
    """2 x 2 array: the channel index the layout samples at each CFA phase (row parity, column parity)."""
    return np.array([[_CHANNEL[layout[0]], _CHANNEL[layout[1]]], [_CHANNEL[layout[2]], _CHANNEL[layout[3]]]])


def remosaic(rgb: np.ndarray, layout: str) -> np.ndarray:
    """The single-channel mosaic of ``rgb`` (H x W x 3) on ``layout``: each pixel keeps the channel sampled there."""
    ch = layout_channels(layout)
    out = np.empty(rgb.shape[:2], np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, ch[dy, dx]]
    return out


def _taps(mosaic: np.ndarray, dy: int, dx: int, stride: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Design rows of CFA phase (dy, dx): every ``stride``-th phase site whose whole neighbourhood lies inside.

    Returns the (n, FILTER**2) taps and the slices of the output sites they predict."""
    r = FILTER // 2
    h, w = mosaic.shape
    y0 = dy + 2 * ((r - dy + 1) // 2)  # first site >= r with the phase's parity
    x0 = dx + 2 * ((r - dx + 1) // 2)
    ys = slice(y0, h - r, stride)
    xs = slice(x0, w - r, stride)
    cols = [mosaic[y0 + i : h - r + i : stride, x0 + j : w - r + j : stride] for i in range(-r, r + 1) for j in range(-r, r + 1)]
    return np.stack([c.ravel() for c in cols], axis=1), (ys, xs)


@dataclass
class DemosaicAccumulator:
    """Normal equations of the per-phase demosaicing regressions, summed over photos, for every layout."""

    xtx: np.ndarray = field(default_factory=lambda: np.zeros((len(LAYOUTS), 4, FILTER**2, FILTER**2)))
    xty: np.ndarray = field(default_factory=lambda: np.zeros((len(LAYOUTS), 4, 3, FILTER**2)))
    yty: np.ndarray = field(default_factory=lambda: np.zeros((len(LAYOUTS), 4, 3)))
    n: int = 0  # samples per (layout, phase), summed

    def add(self, rgb: np.ndarray, *, stride: int = 2) -> None:
        """Add one photo (H x W x 3, 0..255); reads its centred ``MAX_FIT_SIDE`` window, every ``stride``-th site."""
        h, w = rgb.shape[:2]
        top = max(0, (h - MAX_FIT_SIDE) // 2) & ~7
        left = max(0, (w - MAX_FIT_SIDE) // 2) & ~7
        x = np.asarray(rgb[top : top + MAX_FIT_SIDE, left : left + MAX_FIT_SIDE], np.float32)
        for li, layout in enumerate(LAYOUTS):
            m = remosaic(x, layout)
            for p, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
                taps, (ys, xs) = _taps(m, dy, dx, 2 * stride)
                t = taps - 128.0  # centred: float32 products stay accurate over ~10^5 samples
                y = x[ys, xs].reshape(-1, 3) - 128.0
                self.xtx[li, p] += (t.T @ t).astype(np.float64)
                self.xty[li, p] += (t.T @ y).T.astype(np.float64)
                self.yty[li, p] += np.einsum("ij,ij->j", y, y, dtype=np.float64)
                if li == 0:
                    self.n += len(t)

    def solve(self) -> tuple[str, np.ndarray, dict[str, float]]:
        """The layout with the least residual energy, its filters (4 phases x 3 channels x FILTER x FILTER) and the
        mean squared error of every layout (grey levels squared per sample)."""
        errors: dict[str, float] = {}
        filters = np.zeros((len(LAYOUTS), 4, 3, FILTER**2))
        ridge = 1e-6 * np.trace(self.xtx[0, 0]) / FILTER**2 + 1e-9
        for li, layout in enumerate(LAYOUTS):
            sse = 0.0
            for p in range(4):
                a = self.xtx[li, p] + ridge * np.eye(FILTER**2)
                w = np.linalg.solve(a, self.xty[li, p].T).T  # (3, taps)
                filters[li, p] = w
                sse += float(np.sum(self.yty[li, p]) - 2 * np.sum(w * self.xty[li, p]) + np.einsum("ct,ts,cs->", w, self.xtx[li, p], w))
            errors[layout] = sse / max(1, 12 * self.n // 4)
        best = min(errors, key=errors.__getitem__)
        return best, filters[LAYOUTS.index(best)].reshape(4, 3, FILTER, FILTER), errors


def demosaic(mosaic: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Apply per-phase linear filters (4 x 3 x F x F, from :meth:`DemosaicAccumulator.solve`) to a mosaic; H x W x 3
    float32. The filters act on values centred on 128, as they were fitted. Sites nearer the border than F // 2 read
    the mirrored mosaic (OpenCV's correlation, BORDER_REFLECT_101, as ``np.pad(mode="reflect")``)."""
    import cv2

    m = np.asarray(mosaic, np.float32) - 128.0  # the fit's centring (see add)
    out = np.empty((*m.shape, 3), np.float32)
    for p, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        for c in range(3):
            k = np.ascontiguousarray(filters[p, c], np.float32)
            out[dy::2, dx::2, c] = cv2.filter2D(m, -1, k, borderType=cv2.BORDER_REFLECT_101)[dy::2, dx::2]
    out += 128.0
    return out


def highpass(x: np.ndarray) -> np.ndarray:
    """The residual ``x - G_1(x)`` per channel (Gaussian blur, sigma 1 pixel), float32."""
    import cv2

    x = np.asarray(x, np.float32)
    return x - cv2.GaussianBlur(x, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)


def grey(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x if x.ndim == 2 else x @ np.array([0.299, 0.587, 0.114], np.float32)


def block_spectrum(residual: np.ndarray) -> tuple[np.ndarray, int]:
    """Sum of the power spectra of the whole ``BLOCK`` x ``BLOCK`` blocks of a 2-D residual (grid from (0, 0)), and
    the number of blocks."""
    h, w = (s - s % BLOCK for s in residual.shape)
    if h == 0 or w == 0:
        return np.zeros((BLOCK, BLOCK)), 0
    blocks = residual[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK, BLOCK)
    return (np.abs(np.fft.fft2(blocks)) ** 2).sum(axis=0), len(blocks)


def folded_pattern(residual: np.ndarray) -> tuple[np.ndarray, int]:
    """Sum of an H x W x 3 residual folded onto the ``PERIOD`` x ``PERIOD`` grid from (0, 0) (3 x P x P) and the
    number of periods summed."""
    h, w = (s - s % PERIOD for s in residual.shape[:2])
    r = residual[:h, :w].reshape(h // PERIOD, PERIOD, w // PERIOD, PERIOD, 3)
    return r.sum(axis=(0, 2)).transpose(2, 0, 1).astype(np.float64), (h // PERIOD) * (w // PERIOD)


def normalised_spectrum(total: np.ndarray) -> np.ndarray:
    """A mean spectrum scaled to unit mean over the non-DC bins (DC set to 0)."""
    s = np.array(total, np.float64)
    s[0, 0] = 0.0
    mean = s.sum() / (s.size - 1)
    return s / mean if mean > 0 else s


def spectrum_peaks(spectrum: np.ndarray) -> list[tuple[int, int]]:
    """Bins (row, column; 0..BLOCK-1) of the periodic peaks: at least ``PEAK_RATIO`` times the median of their
    wrapped 5x5 neighbourhood, the DC bin excluded."""
    from scipy.ndimage import median_filter

    med = median_filter(spectrum, size=5, mode="wrap")
    peaks = np.argwhere((spectrum >= PEAK_RATIO * np.maximum(med, 1e-12)) & (spectrum > 0))
    return [(int(a), int(b)) for a, b in peaks if (a, b) != (0, 0)]


def shaping_kernel(target: np.ndarray, current: np.ndarray, *, size: int = 9, limits: tuple[float, float] = (0.5, 2.0)) -> np.ndarray:
    """A zero-phase ``size`` x ``size`` kernel whose gain approximates ``sqrt(target / current)`` over the BLOCK x BLOCK
    frequency grid (both unit-mean spectra; the gain clipped to ``limits``; DC gain 1)."""
    gain = np.sqrt(np.clip(target, 1e-6, None) / np.clip(current, 1e-6, None))
    gain = np.clip(gain, *limits)
    gain[0, 0] = 1.0
    k = np.real(np.fft.ifft2(gain))
    k = np.fft.fftshift(k)
    c, r = BLOCK // 2, size // 2
    k = k[c - r : c + r + 1, c - r : c + r + 1]
    win = np.outer(np.hanning(size + 2)[1:-1], np.hanning(size + 2)[1:-1])
    k = k * win
    return (k / k.sum()).astype(np.float32)

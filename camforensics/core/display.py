"""Pictures of residuals and spectra for people: 8-bit arrays, no file I/O."""

from __future__ import annotations

import numpy as np
import scipy.fft


def residual_picture(residual: np.ndarray, *, clip_sigmas: float = 3.0) -> np.ndarray:
    """Map a residual to 8-bit grey: 0 -> 128, +-``clip_sigmas`` standard deviations -> 255 / 0.

    Returns
    -------
    ndarray, uint8, same shape
    """
    w = np.asarray(residual, dtype=np.float32)
    s = float(w.std())
    if not s > 0:
        return np.full(w.shape, 128, np.uint8)
    scaled = w * np.float32(127.5 / (clip_sigmas * s)) + np.float32(127.5)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def spectrum_db(residual: np.ndarray) -> np.ndarray:
    """Magnitude spectrum in dB (20 log10 |F|), zero frequency at the centre.

    Periodic traces of a camera model (JPEG 8x8 grid, CFA, demosaicing) show as peaks (Li et al., cameraGAN).
    """
    w = np.asarray(residual, dtype=np.float32)
    mag = np.abs(scipy.fft.fft2(w - w.mean(), workers=-1))
    return scipy.fft.fftshift(20.0 * np.log10(mag + np.float32(1e-6))).astype(np.float32)


def spectrum_picture(residual: np.ndarray, *, dynamic_range_db: float = 40.0) -> np.ndarray:
    """8-bit picture of :func:`spectrum_db`: the top ``dynamic_range_db`` dB below the 99.99th percentile."""
    db = spectrum_db(residual)
    top = float(np.percentile(db, 99.99))
    scaled = (db - (top - dynamic_range_db)) * np.float32(255.0 / dynamic_range_db)
    return np.clip(scaled, 0, 255).astype(np.uint8)

"""Optics: lens blur and vignetting (light fall-off towards the corners) of a camera model."""

from __future__ import annotations

import functools

import numpy as np


def apply_blur(scene: np.ndarray, *, sigma: float) -> np.ndarray:
    """Gaussian lens blur (a stand-in for the lens point-spread function and the sensor's anti-aliasing filter).

    Parameters
    ----------
    scene : numpy.ndarray
        float32 HxWx3 linear radiance (not modified).
    sigma : float
        Blur std in pixels; 0 returns a copy.

    Returns
    -------
    numpy.ndarray
        Blurred float32 image.
    """
    import cv2

    if sigma <= 0:
        return scene.copy()
    radius = max(1, int(np.ceil(3 * sigma)))
    return cv2.GaussianBlur(scene, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT)


@functools.lru_cache(maxsize=4)
def vignetting_map(height: int, width: int, strength: float) -> np.ndarray:
    """Relative illumination of the focal plane: 1 at the centre, ``1 - strength`` at the corners.

    A cos^4-like fall-off approximated by ``1 - strength * r^2`` (``r`` = distance to the centre, 1 at a
    corner); think of ``strength`` as what is left after the camera's own lens-shading correction.
    The returned array is cached and read-only.

    Parameters
    ----------
    height, width : int
        Sensor size.
    strength : float
        Fall-off at the corners, 0..1.

    Returns
    -------
    numpy.ndarray
        float32 HxW gain map (read-only).
    """
    y = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / np.float32(np.hypot(height / 2, width / 2))
    x = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / np.float32(np.hypot(height / 2, width / 2))
    gain = np.float32(1.0) - np.float32(strength) * (y[:, None] ** 2 + x[None, :] ** 2)
    gain.setflags(write=False)
    return gain

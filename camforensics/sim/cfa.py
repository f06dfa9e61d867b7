"""Colour filter array: mosaic an RGB plane into one raw plane, and demosaic it back with OpenCV."""

from __future__ import annotations

import numpy as np

from camforensics.errors import ParameterError
from camforensics.sim.camera import CFA_PATTERNS, DEMOSAIC_METHODS

_CHANNEL = {"R": 0, "G": 1, "B": 2}
_SITES = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, column) offsets of the 2x2 CFA cell, in pattern-string order
# OpenCV names a Bayer pattern by the second row's second and third pixels, so its names are offset from the
# usual top-left naming: RGGB data is COLOR_BayerBG*. Checked by tests/test_sim_cfa.py on constant colours.
_OPENCV_BAYER = {"RGGB": "BG", "BGGR": "RG", "GRBG": "GB", "GBRG": "GR"}
_OPENCV_SUFFIX = {"bilinear": "", "edge-aware": "_EA", "vng": "_VNG"}


def _check_pattern(pattern: str) -> None:
    if pattern not in CFA_PATTERNS:
        raise ParameterError(f"unknown CFA pattern {pattern!r}; choose one of {CFA_PATTERNS}")


def cfa_channels(pattern: str) -> np.ndarray:
    """Colour channel (0=R, 1=G, 2=B) of each site of the 2x2 cell, as a 2x2 int array.

    Parameters
    ----------
    pattern : str
        One of ``CFA_PATTERNS``, e.g. ``"RGGB"`` (sites (0,0), (0,1), (1,0), (1,1)).

    Returns
    -------
    numpy.ndarray
        2x2 array of channel indices.
    """
    _check_pattern(pattern)
    return np.array([_CHANNEL[c] for c in pattern]).reshape(2, 2)


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Keep, at each pixel, only the colour its CFA filter passes.

    Parameters
    ----------
    rgb : numpy.ndarray
        HxWx3 image (any dtype), channels R, G, B.
    pattern : str
        CFA pattern, one of ``CFA_PATTERNS``.

    Returns
    -------
    numpy.ndarray
        HxW raw plane of the same dtype (a new array; ``rgb`` is not modified).
    """
    _check_pattern(pattern)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ParameterError(f"mosaic needs an HxWx3 image, got shape {rgb.shape}")
    raw = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    for (dy, dx), colour in zip(_SITES, pattern):
        raw[dy::2, dx::2] = rgb[dy::2, dx::2, _CHANNEL[colour]]
    return raw


def demosaic(raw: np.ndarray, pattern: str, method: str) -> np.ndarray:
    """Interpolate the two missing colours at each pixel of a raw plane.

    Parameters
    ----------
    raw : numpy.ndarray
        HxW uint8 raw plane (uint16 also works for ``bilinear`` and ``edge-aware``).
    pattern : str
        CFA pattern of ``raw``, one of ``CFA_PATTERNS``.
    method : str
        ``"bilinear"``, ``"edge-aware"`` (OpenCV's edge-aware Bayer) or ``"vng"`` (variable number of
        gradients, Chang et al. 1999; OpenCV needs uint8 for it).

    Returns
    -------
    numpy.ndarray
        HxWx3 RGB image of ``raw``'s dtype.

    Raises
    ------
    ParameterError
        On an unknown pattern or method, or a dtype the method does not support.
    """
    import cv2

    _check_pattern(pattern)
    if method not in DEMOSAIC_METHODS:
        raise ParameterError(f"unknown demosaicing method {method!r}; choose one of {DEMOSAIC_METHODS}")
    if raw.ndim != 2:
        raise ParameterError(f"demosaic needs an HxW raw plane, got shape {raw.shape}")
    if raw.dtype != np.uint8 and not (raw.dtype == np.uint16 and method != "vng"):
        raise ParameterError(f"demosaic {method!r} cannot take {raw.dtype} data; convert it to uint8")
    code = getattr(cv2, f"COLOR_Bayer{_OPENCV_BAYER[pattern]}2RGB{_OPENCV_SUFFIX[method]}")
    return cv2.cvtColor(raw, code)

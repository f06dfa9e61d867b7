"""JPEG encoding with the EXIF tags a camera writes (Make, Model), via Pillow."""

from __future__ import annotations

import io

import numpy as np

from camforensics.errors import ParameterError
from camforensics.sim.camera import JPEG_SUBSAMPLINGS

EXIF_MAKE = 0x010F
EXIF_MODEL = 0x0110
EXIF_SOFTWARE = 0x0131
_PIL_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def encode_jpeg(rgb: np.ndarray, *, quality: int, subsampling: str, make: str, model: str) -> bytes:
    """Encode an 8-bit RGB image as a baseline JPEG with EXIF Make, Model and Software.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 HxWx3 RGB image.
    quality : int
        libjpeg quality factor, 1..100.
    subsampling : str
        Chroma subsampling: ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"``.
    make, model : str
        EXIF Make (0x010F) and Model (0x0110).

    Returns
    -------
    bytes
        The JPEG file (deterministic for the same inputs). EXIF Software says it was simulated by camforensics.

    Raises
    ------
    ParameterError
        On a wrong image shape/dtype, quality or subsampling.
    """
    from PIL import Image

    from camforensics import __version__

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ParameterError(f"encode_jpeg needs a uint8 HxWx3 image, got {rgb.dtype} {rgb.shape}")
    if not 1 <= quality <= 100:
        raise ParameterError(f"JPEG quality must be in 1..100, got {quality}")
    if subsampling not in _PIL_SUBSAMPLING:
        raise ParameterError(f"unknown chroma subsampling {subsampling!r}; choose one of {JPEG_SUBSAMPLINGS}")
    exif = Image.Exif()
    exif[EXIF_MAKE] = make
    exif[EXIF_MODEL] = model
    exif[EXIF_SOFTWARE] = f"camforensics {__version__} simulator"
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(
        buf, format="JPEG", quality=int(quality), subsampling=_PIL_SUBSAMPLING[subsampling], exif=exif.tobytes()
    )
    return buf.getvalue()

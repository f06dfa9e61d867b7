"""What the deep models take as input: pixels on a 0..255 scale, or the wavelet Wiener residual encoded on it.

Shared by training (which builds patches) and inference (which must feed the exported graph exactly the same
thing), so the encoding lives here once, in numpy.
"""

from __future__ import annotations

import numpy as np

from camforensics.core.params import ResidualParams
from camforensics.errors import ParameterError

# Preprocessors of DESIGN.md section 3. All but WW run inside the network graph on 0..255 pixels.
PREPROCESSORS: tuple[str, ...] = ("RGB", "HP", "FD", "CC", "WW")
# WW input: per-channel wavelet noise W (0..255 scale, rms ~1-3) encoded as 128 + 8 W, clipped to 0..255, so that
# it travels through the same patch sampling, quality filter and in-graph normalisation as pixels (|W| > 16 is
# clipped: such values are scene edges, not sensor traces).
WW_OFFSET = 128.0
WW_GAIN = 8.0
# The in-graph normalisation of every model: x -> (x - 127.5) / 127.5, i.e. 0..255 -> [-1, 1].
VALUE_RANGE: tuple[float, float] = (0.0, 255.0)


def check_preprocessor(name: str) -> str:
    """Canonical (upper-case) preprocessor name; ``ValueError`` naming the choices otherwise."""
    key = str(name).upper()
    if key not in PREPROCESSORS:
        raise ParameterError(f"unknown preprocessor {name!r}; choose one of {PREPROCESSORS}")
    return key


def encode_input(pixels: np.ndarray, preprocessor: str, *, params: ResidualParams | None = None) -> np.ndarray:
    """The model input of an image: HxWx3 float32 on the 0..255 scale.

    Parameters
    ----------
    pixels : ndarray, HxW or HxWx3
        RGB pixels on a 0..255 scale in stored (sensor) order. Not modified.
    preprocessor : str
        One of :data:`PREPROCESSORS`; only ``WW`` changes the input (the others filter inside the graph).
    params : ResidualParams, optional
        Wavelet denoiser parameters for ``WW`` (default sigma0 = 3).

    Returns
    -------
    ndarray, float32, HxWx3
    """
    key = check_preprocessor(preprocessor)
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ParameterError(f"expected an HxW or HxWx3 image, got shape {np.shape(pixels)}")
    if key != "WW":
        return a.astype(np.float32, copy=False)
    from camforensics.core.residual import extract_channel_noise

    noise = extract_channel_noise(a, params=params or ResidualParams(sigma0=3.0))
    out = np.stack(noise, axis=2)
    out *= np.float32(WW_GAIN)
    out += np.float32(WW_OFFSET)
    return np.clip(out, 0.0, 255.0, out=out)

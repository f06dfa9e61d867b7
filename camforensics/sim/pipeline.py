"""The in-camera pipeline of a simulated device: optics -> sensor -> CFA -> tone -> demosaic -> colour -> denoise/sharpen.

:func:`simulate_image` produces the 8-bit RGB image that the camera would hand to its JPEG encoder.
For speed, white balance and the tone curve are one look-up table applied to the raw mosaic (a third of the
samples of an RGB image), demosaicing works on the 8-bit tone-mapped mosaic (which OpenCV's VNG requires) and
the colour matrix is applied to the gamma-encoded RGB, like a saturation adjustment. These simplifications keep
what forensics looks at: a multiplicative PRNU carried through a non-linear tone curve, CFA interpolation
traces, colour processing and JPEG differing between models.
"""

from __future__ import annotations

import functools

import numpy as np

from camforensics.errors import ParameterError
from camforensics.sim.camera import CameraModel, Device
from camforensics.sim.cfa import cfa_channels, demosaic
from camforensics.sim.sensor import device_response, expose, noise_bytes

_AE_SAMPLE_STEP = 7  # auto-exposure meters every 7th row and column (fast, and enough for a mean)
_STRIP_ROWS = 64  # rows per strip in the fused optics -> sensor -> tone stage (keeps the float work in cache)
_CFA_FRACTION = {"R": 0.25, "G": 0.5, "B": 0.25}
_HIGHLIGHT_HEADROOM = 0.75  # auto-exposure keeps every white-balanced channel's mean below this (0..1 scale)


@functools.lru_cache(maxsize=8)
def _site_weights(rows: int, width: int, pattern: str, spectral: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    """float32 rows x W x 3: at each photosite, the response of its colour filter to scene R, G, B (cached)."""
    weights = np.asarray(spectral, dtype=np.float32)[cfa_channels(pattern)]  # 2 x 2 x 3
    plane = np.tile(weights, (rows // 2, width // 2, 1))
    plane.setflags(write=False)
    return plane


def spectral_mosaic(scene: np.ndarray, pattern: str, spectral: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    """Light reaching each photosite: the scene seen through that site's colour filter.

    Parameters
    ----------
    scene : numpy.ndarray
        float32 HxWx3 linear radiance (not modified), H even.
    pattern : str
        CFA pattern.
    spectral : 3x3 nested tuple
        Response of the R, G, B filters (rows) to scene R, G, B.

    Returns
    -------
    numpy.ndarray
        float32 HxW mosaic.
    """
    import cv2

    weights = _site_weights(scene.shape[0], scene.shape[1], pattern, tuple(map(tuple, spectral)))
    return cv2.transform(cv2.multiply(scene, weights), np.ones((1, 3), np.float32))


def meter(scene: np.ndarray, model: CameraModel, *, level: float = 1.0) -> float:
    """Auto-exposure: photo-electrons per unit radiance (fraction of full well) that bring the scene to ``level``.

    ``level`` is the mean light on the photosites as a fraction of full well, measured on a sparse sample of
    the scene; the exposure is lowered when a white-balanced colour channel would average above
    ``_HIGHLIGHT_HEADROOM`` (a blue sky shot for a flat field must not clip its blue channel).
    """
    mean_rgb = scene[::_AE_SAMPLE_STEP, ::_AE_SAMPLE_STEP].reshape(-1, 3).mean(axis=0, dtype=np.float64)
    filters = np.asarray(model.spectral) @ mean_rgb  # mean raw signal of the R, G, B photosites at exposure 1
    mean = max(float(sum(_CFA_FRACTION[c] * filters[i] for i, c in enumerate("RGB"))), 1e-6)
    brightest = max(float(np.max(filters * np.asarray(model.wb_gains))), 1e-6)
    return min(level / mean, _HIGHLIGHT_HEADROOM / brightest)


def tone_curve(x: np.ndarray, *, gamma: float, contrast: float) -> np.ndarray:
    """Display encoding: power law then an S-shaped contrast curve, 0..1 -> 0..1.

    Parameters
    ----------
    x : numpy.ndarray
        Linear values in 0..1.
    gamma : float
        Exponent (about 1/2.2).
    contrast : float
        Blend towards the smoothstep ``3y^2 - 2y^3``; 0 = pure power law.

    Returns
    -------
    numpy.ndarray
        Encoded values in 0..1.
    """
    y = np.power(np.clip(x, 0.0, 1.0), gamma)
    return (1.0 - contrast) * y + contrast * y * y * (3.0 - 2.0 * y)


@functools.lru_cache(maxsize=16)
def _raw_lut(model: CameraModel) -> np.ndarray:
    """uint8 table indexed by ``raw + 4096 * channel``: black level, white balance, tone curve in one look-up."""
    s = model.sensor
    dn = np.arange(s.white_level_dn + 1, dtype=np.float64)
    linear = (dn - s.black_level_dn) / (s.white_level_dn - s.black_level_dn)
    tables = [np.rint(255.0 * tone_curve(linear * g, gamma=model.gamma, contrast=model.contrast)) for g in model.wb_gains]
    lut = np.concatenate(tables).astype(np.uint8)
    lut.setflags(write=False)
    return lut


@functools.lru_cache(maxsize=8)
def _channel_offsets(height: int, width: int, pattern: str, stride: int, black: int) -> np.ndarray:
    """float32 HxW plane of ``black + stride * channel`` of each photosite (read-only, cached)."""
    cell = cfa_channels(pattern).astype(np.float32) * np.float32(stride) + np.float32(black)
    plane = np.tile(cell, (height // 2, width // 2))
    plane.setflags(write=False)
    return plane


def capture_mosaic(
    device: Device, scene: np.ndarray, rng: np.random.Generator, *, exposure: float, iso_gain: float = 1.0
) -> np.ndarray:
    """Optics, colour filters, sensor, ADC, white balance and tone curve: scene -> 8-bit tone-mapped mosaic.

    Runs strip by strip (``_STRIP_ROWS`` rows plus a blur margin) so that the float intermediates stay in
    cache; the result does not depend on the strip size (the temporal noise is drawn for the whole frame first).

    Parameters
    ----------
    device : Device
        Camera body.
    scene : numpy.ndarray
        float32 HxWx3 linear radiance (not modified).
    rng : numpy.random.Generator
        Source of the temporal noise.
    exposure : float
        Photo-electrons, as a fraction of full well, produced by radiance 1.
    iso_gain : float
        Analog gain (1 = base ISO).

    Returns
    -------
    numpy.ndarray
        uint8 HxW mosaic, white-balanced and tone-mapped.
    """
    import cv2

    model = device.model
    params = model.sensor
    height, width = scene.shape[:2]
    response, dark = device_response(device, height, width)
    bits = noise_bytes(rng, height, width)
    lut = _raw_lut(model)
    out = np.empty((height, width), np.uint8)
    sigma = model.blur_sigma
    margin = max(1, int(np.ceil(3 * sigma))) if sigma > 0 else 0
    to_index = iso_gain / params.gain_e_per_dn
    for y0 in range(0, height, _STRIP_ROWS):
        y1 = min(height, y0 + _STRIP_ROWS)
        top, bottom = max(0, y0 - margin), min(height, y1 + margin)
        block = scene[top:bottom]
        if margin:
            block = cv2.GaussianBlur(block, (2 * margin + 1, 2 * margin + 1), sigma, borderType=cv2.BORDER_REFLECT)
        radiance = spectral_mosaic(np.ascontiguousarray(block[y0 - top : y0 - top + (y1 - y0)]), model.cfa, model.spectral)
        electrons = expose(radiance, response[y0:y1], dark[y0:y1], bits[y0:y1], params, exposure=exposure, iso_gain=iso_gain)
        offsets = _channel_offsets(y1 - y0, width, model.cfa, params.white_level_dn + 1, params.black_level_dn)
        index = cv2.addWeighted(electrons, to_index, offsets, 1.0, 0.0, dtype=cv2.CV_16U)  # rounds to the ADC's integers
        out[y0:y1] = np.take(lut, index)
    return out


def apply_colour(rgb: np.ndarray, model: CameraModel) -> np.ndarray:
    """Colour matrix (rows sum to 1, so greys stay grey), then the model's noise reduction and sharpening.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 HxWx3 demosaiced image (not modified).
    model : CameraModel
        Supplies ``ccm``, ``chroma_denoise``, ``luma_denoise``, ``sharpen_amount``, ``sharpen_sigma``.

    Returns
    -------
    numpy.ndarray
        uint8 HxWx3 image.
    """
    import cv2

    out = cv2.transform(rgb, np.asarray(model.ccm, dtype=np.float32))
    if model.luma_denoise > 0:
        # Spatial noise reduction at the finest scale, where sensor noise (and the PRNU) lives.
        smooth = cv2.GaussianBlur(out, (5, 5), 1.0)
        out = cv2.addWeighted(out, 1.0 - model.luma_denoise, smooth, model.luma_denoise, 0.0)
    if model.chroma_denoise:
        # Chroma noise reduction: smooth the colour-difference planes, keep luma (and most of the PRNU) intact.
        ycc = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)
        y, cr, cb = cv2.split(ycc)
        out = cv2.cvtColor(cv2.merge([y, cv2.blur(cr, (5, 5)), cv2.blur(cb, (5, 5))]), cv2.COLOR_YCrCb2RGB)
    if model.sharpen_amount > 0:
        blurred = cv2.GaussianBlur(out, (0, 0), model.sharpen_sigma)
        out = cv2.addWeighted(out, 1.0 + model.sharpen_amount, blurred, -model.sharpen_amount, 0.0)
    return out


def simulate_image(
    device: Device,
    scene: np.ndarray,
    rng: np.random.Generator,
    *,
    exposure: float | None = None,
    iso_gain: float = 1.0,
) -> np.ndarray:
    """Photograph ``scene`` with ``device``: the 8-bit RGB image its JPEG encoder would receive.

    Parameters
    ----------
    device : Device
        Camera body (model pipeline + own sensor pattern).
    scene : numpy.ndarray
        HxWx3 linear radiance, float (about 0..1; not modified); H and W even (2x2 CFA cells).
    rng : numpy.random.Generator
        Source of temporal noise and exposure jitter.
    exposure : float, optional
        Fraction of full well the mean of the scene is exposed to; default the model's auto-exposure target.
        Flat fields are shot brighter (about 0.4-0.6).
    iso_gain : float
        Analog gain, >= 1 (ISO / base ISO): the same brightness from ``iso_gain`` times fewer photo-electrons,
        so relatively more shot noise and a weaker PRNU signal, as in dim scenes.

    Returns
    -------
    numpy.ndarray
        uint8 HxWx3 RGB, in sensor orientation.

    Raises
    ------
    ParameterError
        If the scene is not HxWx3 with even sides, ``exposure`` is not in (0, 1] or ``iso_gain`` < 1.
    """
    if scene.ndim != 3 or scene.shape[2] != 3:
        raise ParameterError(f"scene must be an HxWx3 array, got shape {scene.shape}")
    height, width = scene.shape[:2]
    if height % 2 or width % 2 or height < 8 or width < 8:
        raise ParameterError(f"scene sides must be even and >= 8 (2x2 colour filter cells), got {width}x{height}")
    level = device.model.ae_target if exposure is None else exposure
    if not 0.0 < level <= 1.0:
        raise ParameterError(f"exposure must be in (0, 1], got {exposure}")
    if iso_gain < 1.0:
        raise ParameterError(f"iso_gain must be >= 1 (1 = base ISO), got {iso_gain}")
    model = device.model
    scene32 = np.ascontiguousarray(scene, dtype=np.float32)
    scale = meter(scene32, model, level=level * rng.uniform(0.92, 1.08)) / iso_gain
    mosaic8 = capture_mosaic(device, scene32, rng, exposure=scale, iso_gain=iso_gain)
    return apply_colour(demosaic(mosaic8, model.cfa, model.demosaic), model)

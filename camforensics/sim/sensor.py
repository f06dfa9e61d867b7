"""Image sensor: per-device PRNU and dark signal, photon shot noise, read noise, ADC.

The model follows the noise model behind PRNU forensics (Lukas, Fridrich, Goljan 2006; Chen et al. 2008):
``y = (1 + K) * x + D + n`` with ``x`` the photo-electrons, ``K`` the photo-response non-uniformity of the
device (zero-mean, std about 1%), ``D`` its dark signal, and ``n`` the shot noise (Poisson, variance = signal)
plus read noise (Gaussian). The result is quantised by the ADC above a black level.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from camforensics.sim.camera import Device, SensorParams
from camforensics.sim.optics import vignetting_map


@dataclass(frozen=True)
class SensorPattern:
    """The fixed-pattern signals of one device at one size (the device's identity for PRNU forensics)."""

    prnu: np.ndarray  # float32 HxW multiplicative factor K (zero mean, std = SensorParams.prnu_sigma)
    dark_e: np.ndarray  # float32 HxW dark signal per exposure, electrons (log-normal, plus hot pixels)


def make_sensor_pattern(seed: int, height: int, width: int, params: SensorParams) -> SensorPattern:
    """Draw the PRNU and dark-signal patterns of one device.

    PRNU is white Gaussian, lightly low-passed (neighbouring photodiodes share some processing variation)
    and rescaled to ``params.prnu_sigma``. The dark signal is log-normal around ``params.dark_mean_e`` with a
    sprinkle of hot pixels.

    Parameters
    ----------
    seed : int
        The device's sensor seed.
    height, width : int
        Sensor size.
    params : SensorParams
        Noise figures of the sensor part.

    Returns
    -------
    SensorPattern
        Read-only arrays.
    """
    import cv2

    rng = np.random.default_rng(seed)
    k = rng.standard_normal((height, width), dtype=np.float32)
    k = cv2.GaussianBlur(k, (3, 3), 0.5)  # slight spatial correlation, still mostly white
    k *= np.float32(params.prnu_sigma / max(float(k.std()), 1e-12))
    dark = rng.standard_normal((height, width), dtype=np.float32)
    dark *= np.float32(params.dark_spread)
    np.exp(dark, out=dark)
    dark *= np.float32(params.dark_mean_e / np.exp(params.dark_spread**2 / 2))  # mean = dark_mean_e
    n_hot = int(rng.binomial(height * width, params.hot_pixel_fraction))
    if n_hot:
        flat = dark.reshape(-1)
        idx = rng.choice(height * width, size=n_hot, replace=False)
        flat[idx] += rng.exponential(params.hot_pixel_e, size=n_hot).astype(np.float32)
    k.setflags(write=False)
    dark.setflags(write=False)
    return SensorPattern(prnu=k, dark_e=dark)


@functools.lru_cache(maxsize=3)
def device_response(device: Device, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Cached per device and size: light-to-electron gain map (vignetting x (1 + K)) and dark signal."""
    pattern = make_sensor_pattern(device.sensor_seed, height, width, device.model.sensor)
    response = vignetting_map(height, width, device.model.vignetting) * (np.float32(1.0) + pattern.prnu)
    response.setflags(write=False)
    return response, pattern.dark_e


def sensor_pattern(device: Device, height: int, width: int) -> SensorPattern:
    """The PRNU and dark-signal patterns of ``device`` at a size (ground truth for tests and plots)."""
    return make_sensor_pattern(device.sensor_seed, height, width, device.model.sensor)


# Gaussian noise from 8 random bits per sample: the inverse normal CDF at the centres of 256 equal-probability
# bins, rescaled to unit variance (tails cut at 2.9 sigma). Drawing bytes and looking them up with cv2.LUT is
# about 10x faster than Generator.standard_normal for the 12 M samples of a 12 MP frame, and once shot, read,
# quantisation, demosaicing and JPEG noise add up nobody can tell the difference.
def _normal_table() -> np.ndarray:
    from scipy.special import ndtri

    table = ndtri((np.arange(256, dtype=np.float64) + 0.5) / 256)
    return (table / np.sqrt(np.mean(table**2))).astype(np.float32)


_NORMAL_TABLE: np.ndarray | None = None


def noise_bytes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """HxW uint8 of uniform random bits, to be turned into Gaussian samples by :func:`gaussian_from_bytes`."""
    n = height * width
    words = rng.bit_generator.random_raw(-(-n // 8))
    return words.view(np.uint8)[:n].reshape(height, width)


def gaussian_from_bytes(bits: np.ndarray) -> np.ndarray:
    """float32 standard-normal samples (256 levels) from uniform random bytes."""
    import cv2

    global _NORMAL_TABLE
    if _NORMAL_TABLE is None:
        _NORMAL_TABLE = _normal_table()
    return cv2.LUT(np.ascontiguousarray(bits), _NORMAL_TABLE)


def expose(
    radiance: np.ndarray,
    response: np.ndarray,
    dark_e: np.ndarray,
    noise_bits: np.ndarray,
    params: SensorParams,
    *,
    exposure: float,
    iso_gain: float = 1.0,
) -> np.ndarray:
    """Turn the light on each photosite into electrons, with the sensor's fixed patterns and temporal noise.

    Works on any block of rows (the pipeline calls it strip by strip, so that everything stays in cache).

    Parameters
    ----------
    radiance : numpy.ndarray
        float32 light reaching each photosite through its colour filter (mosaic), about 0..1; not modified.
    response : numpy.ndarray
        float32 gain of each photosite: vignetting x (1 + K), same shape.
    dark_e : numpy.ndarray
        float32 dark signal, electrons, same shape.
    noise_bits : numpy.ndarray
        uint8 random bytes, same shape (from :func:`noise_bytes`).
    params : SensorParams
        Sensor figures.
    exposure : float
        Photo-electrons, as a fraction of full well, produced by radiance 1.
    iso_gain : float
        Analog gain before the ADC (1 = base ISO): the ADC saturates at ``full_well / iso_gain`` electrons.

    Returns
    -------
    numpy.ndarray
        float32 electrons including noise, clipped to what the well and the ADC can represent.
    """
    import cv2

    electrons = cv2.multiply(radiance, response, scale=exposure * params.full_well_e)
    electrons = cv2.max(electrons, 0.0)
    electrons = cv2.add(electrons, dark_e)
    # Shot noise (Poisson, variance = electrons; Gaussian approximation) and read noise in one draw.
    sigma = cv2.sqrt(cv2.add(electrons, params.read_noise_e**2))
    electrons = cv2.add(electrons, cv2.multiply(sigma, gaussian_from_bytes(noise_bits)))
    top = params.full_well_e / max(iso_gain, 1.0)
    electrons = cv2.threshold(electrons, top, top, cv2.THRESH_TRUNC)[1]
    return cv2.max(electrons, -params.black_level_dn * params.gain_e_per_dn / iso_gain)

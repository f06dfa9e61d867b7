"""Simulated camera models and devices: every pipeline parameter, drawn deterministically from a seed.

A :class:`CameraModel` is a product line: its optics, sensor part (noise figures, PRNU strength), colour filter
array, demosaicing algorithm, colour processing and JPEG settings. A :class:`Device` is one body of a model: it
shares every model parameter and differs only in its own sensor (the PRNU pattern and the dark-signal pattern,
both drawn from ``sensor_seed``). That is the situation that makes same-model devices hard to tell apart.
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass

import numpy as np

from camforensics.errors import ParameterError

CFA_PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")  # colour of sites (0,0),(0,1),(1,0),(1,1)
DEMOSAIC_METHODS: tuple[str, ...] = ("bilinear", "edge-aware", "vng")  # OpenCV Bayer conversions
JPEG_SUBSAMPLINGS: tuple[str, ...] = ("4:4:4", "4:2:2", "4:2:0")
SIM_MAKE = "SimCam"  # EXIF Make of every simulated camera (no "_": device folders are <Make>_<Model>_<index>)
_MODEL_STREAM = 1  # SeedSequence spawn key of the model parameter stream (corpus uses 2 and 3 for others)


@dataclass(frozen=True)
class SensorParams:
    """Noise figures of a sensor part, shared by every device of a model."""

    full_well_e: float  # electrons at saturation (small phone pixels: 4000-10000 e-)
    read_noise_e: float  # std of the read noise, electrons (1.5-4 e- in phone sensors)
    adc_bits: int  # ADC resolution (10 or 12 bits)
    black_level_dn: int  # offset added before the ADC, digital numbers
    prnu_sigma: float  # std of the multiplicative PRNU factor K (about 1%, Lukas et al. 2006)
    dark_mean_e: float  # mean dark signal per pixel per exposure, electrons
    dark_spread: float  # sigma of the log-normal pixel-to-pixel dark-signal non-uniformity
    hot_pixel_fraction: float  # fraction of pixels with a large dark signal (hot pixels)
    hot_pixel_e: float  # mean dark signal of a hot pixel, electrons

    @property
    def white_level_dn(self) -> int:
        """Largest ADC output."""
        return (1 << self.adc_bits) - 1

    @property
    def gain_e_per_dn(self) -> float:
        """Conversion gain: electrons per digital number (full well maps to the white level)."""
        return self.full_well_e / (self.white_level_dn - self.black_level_dn)


@dataclass(frozen=True)
class CameraModel:
    """Every pipeline parameter of one simulated camera model (devices of a model share all of them)."""

    make: str  # EXIF Make
    name: str  # EXIF Model; letters, digits and "-" only
    cfa: str  # colour filter array, one of CFA_PATTERNS
    demosaic: str  # demosaicing algorithm, one of DEMOSAIC_METHODS
    blur_sigma: float  # std of the Gaussian lens blur, pixels
    vignetting: float  # relative light fall-off at the image corners (0 = none)
    spectral: tuple[tuple[float, float, float], ...]  # 3x3 colour-filter response to scene R, G, B (rows R, G, B)
    wb_gains: tuple[float, float, float]  # white-balance gains of the R, G, B raw channels
    ccm: tuple[tuple[float, float, float], ...]  # 3x3 colour matrix applied to the gamma-encoded RGB
    gamma: float  # exponent of the tone curve (output = input ** gamma before the contrast curve)
    contrast: float  # strength of the S-shaped contrast curve, 0 = none
    ae_target: float  # auto-exposure: fraction of full well the mean of a natural scene is exposed to
    chroma_denoise: bool  # smooth the colour-difference planes (5x5 box), as most cameras do
    luma_denoise: float  # spatial noise reduction: blend towards a Gaussian-smoothed image (0 = none, 1 = all)
    sharpen_amount: float  # unsharp-mask amount, 0 = none
    sharpen_sigma: float  # unsharp-mask Gaussian std, pixels
    jpeg_quality: int  # libjpeg quality factor
    jpeg_subsampling: str  # chroma subsampling, one of JPEG_SUBSAMPLINGS
    sensor: SensorParams  # sensor part

    @property
    def folder_name(self) -> str:
        """``<Make>_<Model>``, the prefix of its devices' folder names."""
        return f"{self.make}_{self.name}"

    def to_dict(self) -> dict:
        """Plain-JSON form of every parameter."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Device:
    """One simulated camera body: a model plus its own sensor pattern seed."""

    model: CameraModel  # pipeline shared with the other devices of the model
    index: int  # index of this body among the devices of its model (0, 1, ...)
    sensor_seed: int  # seed of this body's PRNU and dark-signal patterns

    @property
    def name(self) -> str:
        """Device folder name ``<Make>_<Model>_<index>``, like real-dev."""
        return f"{self.model.folder_name}_{self.index}"


def model_name(index: int) -> str:
    """Name of the ``index``-th simulated model: ModelA ... ModelZ, ModelAA, ModelAB, ..."""
    letters = string.ascii_uppercase
    suffix = ""
    i = index
    while True:
        suffix = letters[i % 26] + suffix
        i = i // 26 - 1
        if i < 0:
            return f"Model{suffix}"


def _draw_model(rng: np.random.Generator, index: int, cfa: str, demosaic: str) -> CameraModel:
    """Draw the parameters of one model (everything but its CFA/demosaic combination) from ``rng``."""
    # Colour filters leak: each raw channel sees some of the neighbouring bands; the green filter is the most
    # sensitive, red and blue less so (raw images look green before white balance).
    leak = rng.uniform(0.05, 0.25, size=(3, 3))
    np.fill_diagonal(leak, 1.0)
    leak[0, 2] *= 0.3  # little blue light reaches the red filter and vice versa
    leak[2, 0] *= 0.3
    sensitivity = np.array([rng.uniform(0.45, 0.7), 1.0, rng.uniform(0.55, 0.85)])
    spectral = leak / leak.sum(axis=1, keepdims=True) * sensitivity[:, None]
    # White balance for a neutral (grey) scene, with a small model-specific cast left in.
    wb = 1.0 / spectral.sum(axis=1)
    wb = wb / wb[1] * rng.uniform(0.97, 1.03, size=3) * np.array([1.0, 1.0 / rng.uniform(0.97, 1.03), 1.0])
    # Colour matrix: undo part of the filter leak and add the model's saturation, rows sum to 1 (grey stays grey).
    saturation = rng.uniform(1.05, 1.45)
    ccm = np.full((3, 3), (1.0 - saturation) / 2.0)
    np.fill_diagonal(ccm, saturation)
    ccm += rng.uniform(-0.04, 0.04, size=(3, 3))
    ccm -= (ccm.sum(axis=1, keepdims=True) - 1.0) / 3.0
    adc_bits = int(rng.choice([10, 12]))
    sensor = SensorParams(
        full_well_e=float(np.round(rng.uniform(4000, 10000), -1)),
        read_noise_e=round(float(rng.uniform(1.5, 4.0)), 2),
        adc_bits=adc_bits,
        black_level_dn=1 << (adc_bits - 4),
        prnu_sigma=round(float(rng.uniform(0.006, 0.011)), 4),
        dark_mean_e=round(float(rng.uniform(1.0, 4.0)), 2),
        dark_spread=round(float(rng.uniform(0.3, 0.6)), 3),
        hot_pixel_fraction=float(rng.uniform(1e-5, 1e-4)),
        hot_pixel_e=float(np.round(rng.uniform(50, 400))),
    )
    return CameraModel(
        make=SIM_MAKE,
        name=model_name(index),
        cfa=cfa,
        demosaic=demosaic,
        blur_sigma=round(float(rng.uniform(0.3, 0.8)), 3),
        vignetting=round(float(rng.uniform(0.1, 0.45)), 3),
        spectral=_rounded_rows(spectral),
        wb_gains=tuple(round(float(g), 4) for g in wb),
        ccm=_rounded_rows(ccm),
        gamma=round(float(rng.uniform(1 / 2.5, 1 / 1.9)), 4),
        contrast=round(float(rng.uniform(0.0, 0.35)), 3),
        ae_target=round(float(rng.uniform(0.14, 0.22)), 3),
        chroma_denoise=bool(rng.random() < 0.7),
        luma_denoise=round(float(rng.uniform(0.1, 0.5)), 3),
        sharpen_amount=round(float(rng.choice([0.0, rng.uniform(0.2, 0.9)])), 3),
        sharpen_sigma=round(float(rng.uniform(0.7, 1.4)), 3),
        jpeg_quality=int(rng.integers(82, 97)),
        jpeg_subsampling=str(rng.choice(JPEG_SUBSAMPLINGS, p=[0.2, 0.3, 0.5])),
        sensor=sensor,
    )


def _rounded_rows(m: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(round(float(v), 5) for v in row) for row in m)


def make_camera_models(n_models: int, seed: int) -> list[CameraModel]:
    """Draw ``n_models`` camera models with distinct pipelines.

    The CFA pattern and demosaicing algorithm run through all 12 combinations in a seeded order, so up to 12
    models never share both, and models 0..3 have four different CFA patterns. Model ``i`` does not depend on
    ``n_models`` (asking for more models only appends).

    Parameters
    ----------
    n_models : int
        Number of models, >= 1.
    seed : int
        Seed (>= 0); the same seed gives the same models.

    Returns
    -------
    list of CameraModel

    Raises
    ------
    ParameterError
        If ``n_models`` < 1 or ``seed`` < 0.
    """
    if n_models < 1:
        raise ParameterError(f"n_models must be >= 1, got {n_models}")
    if seed < 0:
        raise ParameterError(f"seed must be >= 0, got {seed}")
    order_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_MODEL_STREAM,)))
    cfa_order = order_rng.permutation(len(CFA_PATTERNS))
    demosaic_order = order_rng.permutation(len(DEMOSAIC_METHODS))
    # Combination i: CFA cycles fastest, the demosaic shifts every 4 models, so consecutive models differ in both.
    combos = [
        (CFA_PATTERNS[cfa_order[i % 4]], DEMOSAIC_METHODS[demosaic_order[(i + i // 4) % 3]]) for i in range(12)
    ]
    models = []
    for i in range(n_models):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_MODEL_STREAM, i)))
        cfa, demosaic = combos[i % 12]
        models.append(_draw_model(rng, i, cfa, demosaic))
    return models


def make_devices(models: list[CameraModel], n_devices: int, seed: int) -> list[Device]:
    """Spread ``n_devices`` bodies round-robin over ``models``, each with its own sensor seed.

    Parameters
    ----------
    models : list of CameraModel
        Models, as from :func:`make_camera_models`.
    n_devices : int
        Total number of devices, >= ``len(models)``.
    seed : int
        Seed (>= 0) of the sensor patterns.

    Returns
    -------
    list of Device
        Device ``i`` is a body of model ``i % len(models)``.

    Raises
    ------
    ParameterError
        If there are fewer devices than models.
    """
    if n_devices < len(models):
        raise ParameterError(f"n_devices ({n_devices}) must be >= n_models ({len(models)}): every model needs a device")
    devices = []
    for i in range(n_devices):
        ss = np.random.SeedSequence(seed, spawn_key=(2, i))
        sensor_seed = int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
        devices.append(Device(model=models[i % len(models)], index=i // len(models), sensor_seed=sensor_seed))
    return devices

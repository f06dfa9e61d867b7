"""Camera simulator: synthetic devices and models with known ground truth, for demos, tests and measurements.

Scene -> optics (vignetting, blur) -> sensor (PRNU, dark signal, shot and read noise, ADC) -> CFA mosaic ->
white balance and tone curve -> demosaicing -> colour matrix -> denoise/sharpen -> JPEG with EXIF Make/Model.
Models differ in their whole pipeline; devices of one model differ only in their sensor. See docs/simulator.md.

Importing this package is cheap (NumPy only); OpenCV, Pillow and SciPy are imported when used.
"""

from camforensics.sim.camera import (
    CameraModel,
    Device,
    SensorParams,
    make_camera_models,
    make_devices,
)
from camforensics.sim.corpus import SimulationSpec, simulate_corpus
from camforensics.sim.jpeg import encode_jpeg
from camforensics.sim.pipeline import simulate_image

__all__ = [
    "CameraModel",
    "Device",
    "SensorParams",
    "SimulationSpec",
    "encode_jpeg",
    "make_camera_models",
    "make_devices",
    "simulate_corpus",
    "simulate_image",
]

"""Write a simulated evidence corpus: ``<out>/<device>/{flat,nat}/*.jpg``, ``MANIFEST.csv``, ``simulation.json``.

The layout is the generic one camforensics reads (the same as ``real-dev``), and the manifest gives the ground
truth (device, make, model, content) of every file, so that every command can be tried, and measured, on a
machine with no data of the user's.

With ``camera=False`` the scenes are written as synthetic renders with no camera pipeline at all
(:func:`camforensics.sim.scenes.display_render`, lossless PNG, ``<out>/Synthetic_Render_0/nat/*.png``, make
``Synthetic``, model ``Render``): the photo-realistic images without camera traces that SpoC (Cozzolino et al. 2021)
gives a target camera's traces, for ``evaluate anonymization``. Render ``i`` shows the scene of the camera corpus's
first device's natural image ``i`` of the same seed (the image's random stream draws the scene first).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from camforensics.errors import CamforensicsError, ParameterError
from camforensics.sim.camera import Device, make_camera_models, make_devices

CONTENTS = ("flat", "nat")  # sub-folder names; their index is the "content" part of an image's seed
MANIFEST_NAME = "MANIFEST.csv"
SIMULATION_NAME = "simulation.json"
MANIFEST_COLUMNS = ("file", "device", "make", "model", "content", "width", "height", "sha256")
_IMAGE_STREAM = 3  # SeedSequence spawn key of image streams (models use 1, sensors 2)
RENDER_MAKE, RENDER_MODEL = "Synthetic", "Render"  # the manifest's make and model of renders (camera=False)
RENDER_SOURCE = f"{RENDER_MAKE}_{RENDER_MODEL}_0"  # their "device" folder
FLAT_EXPOSURE = (0.4, 0.6)  # flat fields are exposed to this fraction of full well (bright, unsaturated)
NAT_ISO_STOPS = (0.0, 3.0)  # natural scenes: analog gain 2**U(0, 3), i.e. ISO 100..800 for a base ISO of 100


@dataclass(frozen=True)
class SimulationSpec:
    """What to simulate. The same spec (and tool version) gives byte-identical files."""

    n_models: int = 2  # number of camera models (different pipelines)
    n_devices: int = 3  # number of devices in all, >= n_models; spread round-robin over the models
    n_flat: int = 8  # flat-field images per device (for fingerprints)
    n_nat: int = 4  # natural-scene images per device (queries)
    width: int = 512  # image width in pixels (even)
    height: int = 512  # image height in pixels (even)
    seed: int = 0  # master seed of models, sensors and images
    scene_dir: Path | None = None  # photos to use as natural-scene content (downscaled >= 2x); None = procedural
    nat_iso_stops: tuple[float, float] = NAT_ISO_STOPS  # natural scenes' analog gain: 2**U(lo, hi) (0 = base ISO)
    camera: bool = True  # False: the natural scenes as synthetic renders, no camera pipeline (one source, no flats)

    def __post_init__(self) -> None:
        if not self.camera and (self.n_flat or self.n_models != 1 or self.n_devices != 1):
            raise ParameterError(
                "renders with no camera come from one source and have no sensor: they need n_flat=0, n_models=1 "
                f"and n_devices=1, got n_flat={self.n_flat}, n_models={self.n_models}, n_devices={self.n_devices}"
            )
        if self.n_models < 1:
            raise ParameterError(f"need at least one camera model, got n_models={self.n_models}")
        if self.n_devices < self.n_models:
            raise ParameterError(
                f"n_devices ({self.n_devices}) must be >= n_models ({self.n_models}): every model needs a device"
            )
        if self.n_flat < 0 or self.n_nat < 0 or self.n_flat + self.n_nat < 1:
            raise ParameterError(f"need at least one image per device, got n_flat={self.n_flat}, n_nat={self.n_nat}")
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise ParameterError(f"image size must be even and at least 32x32, got {self.width}x{self.height}")
        if self.seed < 0:
            raise ParameterError(f"seed must be >= 0, got {self.seed}")
        lo, hi = self.nat_iso_stops
        if not 0.0 <= lo <= hi <= 6.0:
            raise ParameterError(f"nat_iso_stops must satisfy 0 <= lo <= hi <= 6 (stops above base ISO), got {self.nat_iso_stops}")
        object.__setattr__(self, "nat_iso_stops", (float(lo), float(hi)))

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        d = dataclasses.asdict(self)
        d["scene_dir"] = None if self.scene_dir is None else str(self.scene_dir)
        d["nat_iso_stops"] = list(self.nat_iso_stops)
        return d


def image_rng(seed: int, device_index: int, content: str, index: int) -> np.random.Generator:
    """The random stream of one image: independent of every other image and of how many there are."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(_IMAGE_STREAM, device_index, CONTENTS.index(content), index))
    )


def render_one(device: Device, device_index: int, content: str, index: int, spec: SimulationSpec, photos: list[Path]) -> bytes:
    """Simulate one JPEG file of the corpus (scene -> camera pipeline -> JPEG)."""
    from camforensics.sim.jpeg import encode_jpeg
    from camforensics.sim.pipeline import simulate_image
    from camforensics.sim.scenes import (
        load_photo_scene,
        render_flat_scene,
        render_natural_scene,
    )

    rng = image_rng(spec.seed, device_index, content, index)
    if content == "flat":  # bright, at base ISO: what a lab shoots for a fingerprint
        scene = render_flat_scene(rng, spec.height, spec.width)
        exposure, iso_gain = float(rng.uniform(*FLAT_EXPOSURE)), 1.0
    else:  # auto-exposure, at whatever ISO the light called for
        if photos:
            scene = load_photo_scene(photos[int(rng.integers(len(photos)))], rng, spec.height, spec.width)
        else:
            scene = render_natural_scene(rng, spec.height, spec.width)
        exposure, iso_gain = None, float(2.0 ** rng.uniform(*spec.nat_iso_stops))
    rgb = simulate_image(device, scene, rng, exposure=exposure, iso_gain=iso_gain)
    m = device.model
    return encode_jpeg(rgb, quality=m.jpeg_quality, subsampling=m.jpeg_subsampling, make=m.make, model=m.name)


def render_synthetic(index: int, spec: SimulationSpec, photos: list[Path]) -> bytes:
    """One synthetic render of the corpus (``camera=False``): natural scene ``index`` -> display encoding -> PNG."""
    from camforensics.io.encoding import encode_image
    from camforensics.sim.scenes import display_render, load_photo_scene, render_natural_scene

    rng = image_rng(spec.seed, 0, "nat", index)
    if photos:
        scene = load_photo_scene(photos[int(rng.integers(len(photos)))], rng, spec.height, spec.width)
    else:
        scene = render_natural_scene(rng, spec.height, spec.width)
    return encode_image(display_render(scene), "png", 0)


def _image_path(device: Device | str, content: str, index: int) -> str:
    name = device if isinstance(device, str) else device.name
    suffix = ".png" if isinstance(device, str) else ".jpg"
    return f"{name}/{content}/{name}_{content}_{index:03d}{suffix}"


def _prepare_out_dir(out: Path) -> None:
    """Accept a missing or empty folder, or a previous simulation (whose files are removed); refuse the rest."""
    if out.exists() and not out.is_dir():
        raise CamforensicsError(f"output {out} exists and is not a folder; choose a new folder")
    if not out.exists():
        return
    entries = [p for p in out.rglob("*")]
    if not entries:
        return
    if not (out / SIMULATION_NAME).is_file():
        raise CamforensicsError(
            f"output folder {out} is not empty and holds no previous simulation ({SIMULATION_NAME}); "
            "choose an empty or new folder"
        )
    ours = []
    for p in entries:
        rel = p.relative_to(out)
        if p.is_dir():
            if len(rel.parts) > 2 or (len(rel.parts) == 2 and rel.parts[1] not in CONTENTS):
                raise CamforensicsError(f"output folder {out} holds {rel}, which no simulation writes; choose another folder")
            continue
        generated = rel.name in (SIMULATION_NAME, MANIFEST_NAME) and len(rel.parts) == 1
        generated |= len(rel.parts) == 3 and rel.parts[1] in CONTENTS and (rel.suffix in (".jpg", ".png") or rel.name.endswith(".tmp"))
        if not generated:
            raise CamforensicsError(
                f"output folder {out} holds {rel}, which is not part of a previous simulation; "
                "choose an empty or new folder, or remove it"
            )
        ours.append(p)
    for p in ours:
        p.unlink()
    for d in sorted((p for p in entries if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        d.rmdir()


def _manifest_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def simulate_corpus(
    out_dir: str | os.PathLike[str],
    spec: SimulationSpec,
    *,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[dict]:
    """Simulate devices and write their flat-field and natural images with a ground-truth manifest.

    Parameters
    ----------
    out_dir : path-like
        Output folder: missing, empty, or a previous simulation (which is replaced).
    spec : SimulationSpec
        Models, devices, images per device, size, seed, optional scene photos.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image.
    workers : int, optional
        Images simulated in parallel (threads; OpenCV, NumPy and the JPEG encoder release the GIL).
        Default: up to 2. The output does not depend on it.

    Returns
    -------
    list of dict
        The manifest rows: file (relative to ``out_dir``, ``/``-separated), device, make, model, content
        (``flat`` / ``nat``), width, height, sha256 of the file.

    Raises
    ------
    CamforensicsError
        If ``out_dir`` is a file or a non-empty folder that is not a previous simulation.
    InputError
        If ``spec.scene_dir`` holds no usable photo.
    """
    from camforensics import __version__
    from camforensics.io.hashing import sha256_bytes
    from camforensics.reports.atomic import atomic_write_bytes, atomic_write_text
    from camforensics.sim.scenes import list_photos

    out = Path(out_dir)
    photos = list_photos(spec.scene_dir) if spec.scene_dir is not None else []
    models = make_camera_models(spec.n_models, spec.seed) if spec.camera else []
    devices = make_devices(models, spec.n_devices, spec.seed) if spec.camera else []
    _prepare_out_dir(out)
    header = {
        "tool": "camforensics simulate",
        "version": __version__,
        "complete": False,
        "spec": spec.to_dict(),
        "seeding": "numpy SeedSequence(seed, spawn_key=...): models (1, model), sensors (2, device), "
        "images (3, device, content [0 flat, 1 nat], index)",
        "models": [m.to_dict() for m in models],
        "devices": [
            {"name": d.name, "make": d.model.make, "model": d.model.name, "index": d.index, "sensor_seed": d.sensor_seed}
            for d in devices
        ]
        if spec.camera
        else [{"name": RENDER_SOURCE, "make": RENDER_MAKE, "model": RENDER_MODEL, "index": 0, "sensor_seed": None,
               "pipeline": "none: display-encoded scene, PNG"}],  # fmt: skip
    }
    atomic_write_text(out / SIMULATION_NAME, json.dumps(header, indent=2) + "\n")
    jobs: list[tuple[int, Device | None, str, int]] = [
        (di, device, content, i)
        for di, device in enumerate(devices)
        for content, count in (("flat", spec.n_flat), ("nat", spec.n_nat))
        for i in range(count)
    ] if spec.camera else [(0, None, "nat", i) for i in range(spec.n_nat)]  # fmt: skip

    def work(job: tuple[int, Device | None, str, int]) -> dict:
        di, device, content, i = job
        if device is None:  # a synthetic render: no camera
            data, rel = render_synthetic(i, spec, photos), _image_path(RENDER_SOURCE, content, i)
            make, model = RENDER_MAKE, RENDER_MODEL
        else:
            data, rel = render_one(device, di, content, i, spec, photos), _image_path(device, content, i)
            make, model = device.model.make, device.model.name
        atomic_write_bytes(out / rel, data)
        return {
            "file": rel,
            "device": RENDER_SOURCE if device is None else device.name,
            "make": make,
            "model": model,
            "content": content,
            "width": spec.width,
            "height": spec.height,
            "sha256": sha256_bytes(data),
        }

    n_workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(jobs)))
    rows: list[dict] = []
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        # Jobs run device by device, so each device's sensor pattern is made once and stays cached.
        for done, row in enumerate(pool.map(work, jobs), start=1):
            rows.append(row)
            if progress is not None:
                progress(done, len(jobs))
    atomic_write_text(out / MANIFEST_NAME, _manifest_csv(rows))
    header["complete"] = True
    header["n_images"] = len(rows)
    atomic_write_text(out / SIMULATION_NAME, json.dumps(header, indent=2) + "\n")
    return rows

"""Shared fixtures: seeded synthetic devices and the location of the real-dev corpus."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import synth
from anonymizer_fixtures import anon_dataset, anon_registry, anon_runs  # noqa: F401  (fixtures)
from attributor_fixtures import attr_trained  # noqa: F401  (fixture)
from dataset_trees import dresden_tree, generic_tree, kaggle_tree, vision_tree  # noqa: F401  (fixtures)

REAL_DEV = Path(os.environ.get("CAMFORENSICS_REAL_DEV", Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dev"))

SIZE = (256, 256)


@pytest.fixture(autouse=True, scope="session")
def _reports_folder(tmp_path_factory):
    """Reports written without --report go to a temporary folder, never the tester's home."""
    os.environ["CAMFORENSICS_REPORTS"] = str(tmp_path_factory.mktemp("default-reports"))
    yield


@pytest.fixture(scope="session")
def devices() -> dict[str, np.ndarray]:
    """Three synthetic devices' PRNU factors K (256x256)."""
    return {name: synth.make_prnu(SIZE, seed) for seed, name in enumerate(("cam_a", "cam_b", "cam_c"), start=1)}


@pytest.fixture(scope="session")
def device_images(devices) -> dict[str, dict[str, list[np.ndarray]]]:
    """Per device: 6 flat-field and 3 natural photos, uint8 RGB after demosaic and JPEG q92."""
    out = {}
    for i, (name, k) in enumerate(devices.items()):
        out[name] = {
            "flat": [synth.shoot(k, 100 * i + j, flat=True) for j in range(6)],
            "nat": [synth.shoot(k, 100 * i + 50 + j) for j in range(3)],
        }
    return out


@pytest.fixture(scope="session")
def device_tree(tmp_path_factory, device_images) -> Path:
    """The synthetic devices written as JPEG files: <root>/<device>/<flat|nat>/*.jpg."""
    root = tmp_path_factory.mktemp("devices")
    for name, sets in device_images.items():
        for kind, images in sets.items():
            (root / name / kind).mkdir(parents=True)
            for j, rgb in enumerate(images):
                synth.write_jpeg(root / name / kind / f"{kind} {j}.jpg", rgb, exif={0x010F: "Synth", 0x0110: name})
    return root


@pytest.fixture(scope="session")
def realdev_flat_library(tmp_path_factory) -> Path:
    """A library of the real-dev devices that have flat-field images, each enrolled from all of them.

    Shared by the real-data tier (enrolling ~140 images of 1 MP is most of its time); tests that add entries
    copy it first. Only real-data tests use it, and they skip when the corpus is absent.
    """
    from camforensics.pipelines.enroll import enroll_device

    lib = tmp_path_factory.mktemp("realdev_flat") / "lib"
    for folder in sorted(p for p in REAL_DEV.iterdir() if p.is_dir()):
        flat = sorted((folder / "flat").glob("*.jpg")) if (folder / "flat").is_dir() else []
        if flat:
            _, entry = enroll_device(flat, name=folder.name, library=lib)
            assert entry is not None and entry.meta["n_images"] == len(flat)
    return lib
